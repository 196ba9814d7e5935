#!/usr/bin/perl
# Being seen alive, and not mistaken for another nginx:
# - a worker whose LISTEN connection hangs (its backend stopped) still
#   beats, through its pool: its sessions are not swept as lost;
# - a LISTEN connection lost while the notification it sent itself is on
#   its way is not reported deaf (t/135 hit it when pgbouncer stopped
#   just then);
# - two nginx with one node name in two PID namespaces (containers of one
#   host name): neither takes the other's workers for gone ones of its
#   own, and the collision is logged.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);
plan skip_all => 'stops PostgreSQL backends and makes PID namespaces: root only'
    if $> != 0;

my $pg = Pgauth::Pg->new;

# --- the LISTEN connection hangs ---

my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_heartbeat 1s;'));
my $key = $pg->create_key('steady');
my $c = rtmpc_start($ng->{rtmp_port}, 'live', name => $key, hold => 30000);
ok($c->wait_line(qr/NetStream\.Publish\.Start/, 5), 'live');
my $listener = $pg->psql("SELECT pid FROM pg_stat_activity"
                         . " WHERE application_name = 'nginx-rtmp-pgauth-listen'");
like($listener, qr/^\d+$/, "the LISTEN connection's backend is $listener");
kill 'STOP', $listener;
sleep 4.5;
# what any other node's heartbeat does
$pg->psql("SELECT pgauth.sweep_lost()");
is($pg->open_sessions('steady'), 1,
   'its backend stopped for 4.5 s (3 heartbeats are 3 s): the session is not swept');
cmp_ok($pg->psql("SELECT extract(epoch FROM now() - max(seen_at)) FROM pgauth.workers"),
       '<', 2, '... the worker was seen within its last two heartbeats');
ok(!$c->closed, '... and the publisher streams on');
kill 'CONT', $listener;
$c->stop;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# --- the LISTEN connection lost while its probe is on its way ---
# (a pooler or the server restarting): what it missed then is no sign
# that LISTEN does not work there

$ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_heartbeat 1s; pgauth_pool_size 1;'));
my $listens = sub { scalar(() = $ng->error_log =~ /listening on channel/g) };
ok(Pgauth::wait_for(5, sub { $listens->() == 1 }), 'listening');
# the pool's one connection held: a record waits for its key's row
$key = $pg->create_key('held');
my $hold = Pgauth::Psql->new($pg);
$hold->{dbh}->begin_work;
$hold->{dbh}->do("SELECT FROM pgauth.stream_keys WHERE stream_name = 'held'"
                 . " FOR UPDATE");
$c = rtmpc_start($ng->{rtmp_port}, 'live', name => $key, hold => 30000);
ok(Pgauth::wait_for(5, sub {
       $pg->psql("SELECT count(*) FROM pg_stat_activity"
                 . " WHERE wait_event_type = 'Lock'"
                 . " AND query ~ 'pgauth.authorize'") == 1 }),
   'the pool busy: a record waits for a lock');
my $kill_listen = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  . " WHERE application_name = 'nginx-rtmp-pgauth-listen'";
$pg->psql($kill_listen);
ok(Pgauth::wait_for(5, sub { $listens->() == 2 }),
   'LISTEN again: its probe waits behind the record');
$pg->psql("ALTER ROLE pgauth_nginx NOLOGIN");
$pg->psql($kill_listen);
$hold->{dbh}->commit;
ok($c->wait_line(qr/NetStream\.Publish\.Start/, 5), '... the probe sent');
sleep 5;
unlike($ng->error_log, qr/did not receive the notification/,
       'the LISTEN connection lost meanwhile: not reported deaf');
$pg->psql("ALTER ROLE pgauth_nginx LOGIN");
ok(Pgauth::wait_for(10, sub { $listens->() == 3 }), 'LISTEN once more');
my $t0 = time;
$pg->psql("SELECT pgauth.revoke_key('held')");
ok($c->closed(3), sprintf('a revoke ends the stream (%.0f ms)',
                          (time - $t0) * 1000));
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# --- one node name, two PID namespaces ---

SKIP: {
    skip 'unshare not found', 6 unless -x '/usr/bin/unshare';

    my $conf = Pgauth::Nginx::default_conf(rtmp => 'pgauth_node shared;'
                                                   . ' pgauth_heartbeat 1s;');
    my $a = Pgauth::Nginx->new(pg => $pg, conf => $conf, workers => 2);
    my $ka = $pg->create_key('in_a');
    my $ca = rtmpc_start($a->{rtmp_port}, 'live', name => $ka, hold => 30000);
    ok($ca->wait_line(qr/NetStream\.Publish\.Start/, 5), 'nginx A (node "shared") is live');

    # nginx B in a PID namespace of its own: its master is pid 1 there
    my $b = Pgauth::Nginx->new(pg => $pg, conf => $conf, workers => 2,
                               no_start => 1);
    my $pid = fork // die;
    if (!$pid) {
        %ENV = (%ENV, $b->sanitizer_env);
        open STDOUT, '>', "$b->{dir}/unshare.log";
        open STDERR, '>&', \*STDOUT;
        # no --mount-proc (a chroot cannot make / private): /proc stays
        # the host's, kill() and getpid() are the namespace's
        exec('/usr/bin/unshare', '--pid', '--fork',
             $Pgauth::NGINX, '-g', 'daemon off;', '-p', $b->{dir},
             '-c', "$b->{dir}/nginx.conf") or POSIX::_exit(127);
    }
    my $port = $b->{rtmp_port};
    my $up = wait_for(10, sub { waitpid($pid, POSIX::WNOHANG()) == $pid ? -1
                                : IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                                        PeerPort => $port) });
    skip 'unshare --pid failed here: ' . Pgauth::slurp("$b->{dir}/unshare.log"), 6
        if !ref $up && $up == -1
           && Pgauth::slurp("$b->{dir}/unshare.log") =~ /^unshare:/m;
    ok($up, 'nginx B, same node name, in another PID namespace, runs');
    my $kb = $pg->create_key('in_b');
    my $cb = rtmpc_start($b->{rtmp_port}, 'live', name => $kb, hold => 30000);
    ok($cb->wait_line(qr/NetStream\.Publish\.Start/, 5), 'nginx B is live');

    # each registers, and the heartbeats go on, for a few of them
    sleep 4;
    ok(!$ca->closed && $pg->open_sessions('in_a') == 1,
       "B did not take A's workers for gone workers of its own");
    ok(!$cb->closed && $pg->open_sessions('in_b') == 1, '... nor A those of B');
    like(Pgauth::slurp("$b->{dir}/logs/error.log"),
         qr/pgauth: another nginx uses node name "shared" .*give each nginx its own "pgauth_node"/,
         'B logs that another nginx uses its node name');

    $ca->stop;
    $cb->stop;
    # unshare waits for B's master, its child: that one is stopped
    my ($bmaster) = grep { Pgauth::slurp("/proc/$_/stat") =~ /^\d+ \(nginx\) \S $pid / }
                    map { m{/proc/(\d+)/stat} } glob '/proc/[0-9]*/stat';
    kill 'TERM', $bmaster if $bmaster;
    kill 'KILL', $pid unless wait_for(10, sub { waitpid($pid, POSIX::WNOHANG()) == $pid });
    waitpid $pid, 0;
    $a->stop;
    is(join("\n", $a->bad_lines, grep { /\[(alert|emerg|crit)\]|AddressSanitizer/ }
                                 split /\n/, Pgauth::slurp("$b->{dir}/logs/error.log")),
       '', 'no alert, crash or sanitizer report');
}

done_testing();
