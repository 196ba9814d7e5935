#!/usr/bin/perl
# What a real PostgreSQL cannot be made to do on cue, from a hostile one
# (t/lib/FakePg.pm speaks the protocol):
# - a reply that is not a result (COPY OUT where rows were expected):
#   the decision is refused, the connection closed; the worker does not
#   spin, HTTP stays fast, nginx stops on TERM.  (nginx -t refuses a COPY
#   query it can recognise: t/010.)
# - a notification read together with the connection's reset, with a live
#   session: whatever the handler sends on that connection, the loop over
#   what libpq read survives its closing (ASan would see a use after
#   free).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;
use FakePg;

need_tools($RTMPC);

sub worker_cpu {
    my ($pid) = @_;
    my @f = split ' ', (Pgauth::slurp("/proc/$pid/stat") =~ /\)\s+(.*)/)[0] // '';
    return (($f[11] // 0) + ($f[12] // 0)) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub count {
    my ($fake, $re) = @_;
    return scalar(() = $fake->log =~ /$re/g);
}

sub nginx_for {
    my ($fake, %o) = @_;
    my $ng = Pgauth::Nginx->new(no_start => 1);
    $ng->write_conf(Pgauth::Nginx::default_conf(rtmp => 'pgauth_heartbeat 30s;',
                                                app => 'pgauth_timeout 1s;'));
    my $conf = Pgauth::slurp("$ng->{dir}/nginx.conf");
    $conf =~ s/pgauth_dsn "[^"]*"/pgauth_dsn "host=127.0.0.1 port=$fake->{port} dbname=x user=x sslmode=disable"/;
    Pgauth::spew("$ng->{dir}/nginx.conf", $conf);
    $ng->start;
    return $ng;
}

# --- COPY OUT in reply to the authorization ---

my $dir = Pgauth::tmpdir();
my $fake = FakePg->new(mode => 'copy', log => "$dir/copy.log");
my $ng = nginx_for($fake);
my ($worker) = $ng->worker_pids;
ok(wait_for(5, sub { $fake->log =~ /simple \d+: SET statement_timeout/ }),
   'nginx talks to the hostile server');

my $cpu0 = worker_cpu($worker);
my $t = time;
my $r = rtmpc($ng->{rtmp_port}, 'live', name => 'somekey', timeout => 5000);
my $took = time - $t;
like($r->{status}{code}, qr/^NetStream\.Failed$/,
     'a COPY reply refuses the publish as unavailable');
cmp_ok($took, '<', 1.5, sprintf '... within the timeout (%.2f s)', $took);
like($ng->error_log, qr/unexpected result "PGRES_COPY_OUT", closing it/,
     '... and the connection is closed, saying why');
my (undef, undef, $ping) = http_get($ng->{http_port}, '/ping');
cmp_ok($ping, '<', 0.5, sprintf 'HTTP answers (%.0f ms)', $ping * 1000);
sleep 1;
my $cpu = worker_cpu($worker) - $cpu0;
cmp_ok($cpu, '<', 0.5, sprintf 'the worker does not spin (%.2f s of CPU in %.1f s)',
                               $cpu, time - $t);
$r = rtmpc($ng->{rtmp_port}, 'live', name => 'somekey', timeout => 5000);
is($r->{status}{code}, 'NetStream.Failed', 'the next publish is refused the same way');
my $master = $ng->master_pid;
$t = time;
$ng->stop;
ok(!kill(0, $master), sprintf 'nginx stops on TERM (%.2f s)', time - $t);
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
$fake->stop;

# --- a notification, then the connection reset, read at once ---

$fake = FakePg->new(mode => 'normal', log => "$dir/notify.log");
$ng = nginx_for($fake);
($worker) = $ng->worker_pids;
ok(wait_for(5, sub { $fake->log =~ /simple \d+: SET statement_timeout.*LISTEN/ }),
   'the LISTEN connection is set up');
my $c = rtmpc_start($ng->{rtmp_port}, 'live', name => 'somekey', hold => 20000);
ok($c->wait_line(qr/NetStream\.Publish\.Start/, 5), 'a session is live (session 1)');
for my $round (1 .. 5) {
    sleep 0.3;
    # the worker stopped: the notification and the reset wait in its
    # socket, and libpq reads them with one read
    kill 'STOP', $worker;
    $fake->notify_and_reset;
    wait_for(2, sub { count($fake, qr/notified and reset connection/) >= $round });
    sleep 0.2;
    kill 'CONT', $worker;
    ok(wait_for(5, sub { count($fake, qr/simple \d+: SET .*LISTEN/) > $round }),
       "round $round: the worker survives and listens again");
}
ok(kill(0, $worker), 'the same worker is alive');
ok(!grep({ $_->[0] =~ /^closed/ } @{$c->{lines}}), 'the session is live');
like($ng->error_log, qr/idle listen connection #\d+ closed by the server|listen connection #\d+: .*failed/,
     'the lost LISTEN connection was noticed');
$c->stop;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
$fake->stop;

done_testing();
