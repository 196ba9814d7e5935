#!/usr/bin/perl
# What PostgreSQL and the network do to the pool: pooled backends
# terminated or timed out while idle, a backend killed mid-query, slow
# queries under 200 concurrent attempts, a reconnect storm against a
# black-holed server, and 50 reloads while publishers stream and decisions
# are pending.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');

sub backend_pids {
    return split /\n/, $pg->psql("SELECT pid FROM pg_stat_activity"
                                 . " WHERE application_name = 'nginx-rtmp-pgauth'");
}

# --- idle pooled backends terminated, and idle_session_timeout ---

my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 2;'));
my $port = $ng->{rtmp_port};
my $fds0;

my $r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'publishes');
my ($worker) = $ng->worker_pids;
my $fds = sub { scalar(() = glob "/proc/$worker/fd/*") };
$fds0 = $fds->();

# every pooled backend (the first publish, registering and the LISTEN
# probe may have opened both): each is noticed before the next publish
my $killed = $pg->psql("SELECT count(pg_terminate_backend(pid))"
                       . " FROM pg_stat_activity"
                       . " WHERE application_name = 'nginx-rtmp-pgauth'");
ok(wait_for(3, sub {
       my $n = () = $ng->error_log =~ /idle connection #\d+ closed by the server/g;
       $n >= $killed;
   }), "a terminated idle backend is noticed at once ($killed terminated)");
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'the next publish succeeds on a new connection');
ok(wait_for(3, sub { $fds->() <= $fds0 }), 'no file descriptor left behind (' . $fds->() . " vs $fds0)");
my $cw = `ss -tn state close-wait 2>/dev/null | grep -c ':$pg->{port}'`;
chomp $cw;
is($cw || 0, 0, 'no connection in CLOSE_WAIT');

$pg->psql("ALTER ROLE pgauth_nginx SET idle_session_timeout = '500ms'");
$pg->psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
          . " WHERE application_name LIKE 'nginx-rtmp-pgauth%'");
sleep 0.3;
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'idle_session_timeout 500ms: publish');
my @used = backend_pids();
sleep 1.5;
my %now = map { $_ => 1 } backend_pids();
is(scalar(grep { $now{$_} } @used), 0,
   '... the server closed the idle pooled backend (' . join(',', @used) . ')');
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', '... and the next publish opens a new one');
$pg->psql("ALTER ROLE pgauth_nginx RESET idle_session_timeout");
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# --- a backend killed mid-query ---

$ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 1;',
    app => 'pgauth_timeout 5s; pgauth_query "SELECT a.* FROM pgauth.authorize($1, $2, $3, $4, $5) a,'
           . ' pg_sleep(CASE WHEN $4 = \'slow\' THEN 3 ELSE 0 END)";'));
$port = $ng->{rtmp_port};
my $c = rtmpc_start($port, 'live', name => "$key?slow");
ok(wait_for(3, sub { $pg->psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'"
                               . " AND state = 'active' AND application_name = 'nginx-rtmp-pgauth'") == 1 }),
   'a query is running');
my $t = time;
$pg->psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nginx-rtmp-pgauth'");
my ($line) = $c->wait_line(qr/^status /, 5);
like($line // '', qr/NetStream\.Failed/, 'backend killed mid-query: refused as unavailable');
cmp_ok(time - $t, '<', 1, sprintf('... promptly (%.0f ms)', (time - $t) * 1000));
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'the broken connection was not pooled: the next publish works');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# --- slow queries, 200 concurrent attempts ---

$ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 4; pgauth_queue_size 64;',
    main => "worker_rlimit_nofile 4096;",
    app => 'pgauth_timeout 1s; pgauth_query "SELECT a.* FROM pgauth.authorize($1, $2, $3, $4, $5) a,'
           . ' pg_sleep(5)";'));
$port = $ng->{rtmp_port};
my @fh;
$t = time;
for my $i (1 .. 200) {
    my $pid = open(my $fh, '-|') // die;
    if (!$pid) {
        exec $RTMPC, '-n', $key, '-t', '10000', "rtmp://127.0.0.1:$port/live";
    }
    push @fh, $fh;
}
my ($failed, $fast, $worst, $maxb) = (0, 0, 0, 0);
my $probe = time;
for my $fh (@fh) {
    my @out = <$fh>;
    close $fh;
    my ($st) = grep { /^status / } @out;
    next unless $st;
    $failed++ if $st =~ /NetStream\.Failed/;
    my ($ms) = $st =~ /^status ([\d.]+)/;
    $fast++ if $ms < 200;
    $worst = $ms if $ms > $worst;
    if (time - $probe > 0.2) {
        my $b = $pg->nginx_backends;
        $maxb = $b if $b > $maxb;
        $probe = time;
    }
}
is($failed, 200, '200 concurrent attempts on a 5 s query: all refused as unavailable');
cmp_ok($worst, '<=', 1500, "... none later than the 1 s timeout allows (worst $worst ms)");
my $full = () = $ng->error_log =~ /reason="too many decisions queued"/g;
cmp_ok($full, '>', 0, "... the excess over the queue of 64 refused at once ($full; $fast answered under 200 ms)");
cmp_ok($maxb, '<=', 4, "backends never above the pool size (max $maxb)");
ok(wait_for(3, sub { $pg->psql("SELECT count(*) FROM pg_stat_activity"
                               . " WHERE query LIKE '%pg_sleep(5)%' AND state = 'active'"
                               . " AND pid <> pg_backend_pid()") == 0 }),
   'no slow statement left running in the server');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# --- a reconnect storm against a black hole: a listener that accepts and
#     never answers; after the first failed connect, at most one attempt
#     per worker is in flight ---

my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 128, ReuseAddr => 1) or die;
my $hport = $hole->sockport;
my $conf = Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 4; pgauth_listen off;',
    app => 'pgauth_timeout 1s;');
$conf =~ s/pgauth_dsn "%%DSN%%"/pgauth_dsn "host=127.0.0.1 port=$hport dbname=x user=x"/;
$ng = Pgauth::Nginx->new(conf => $conf, workers => 2);
$port = $ng->{rtmp_port};

my (@accepted, %open, $maxopen);
my $sel = IO::Select->new($hole);
my $watch = sub {
    my ($secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        for my $h ($sel->can_read(0.05)) {
            if ($h == $hole) {
                my $s = $hole->accept;
                push @accepted, [ time, $s ];
                $sel->add($s);
                $open{$s} = $s;
            } else {
                my $buf;
                if (!sysread($h, $buf, 4096)) {
                    $sel->remove($h);
                    delete $open{$h};
                    close $h;
                }
            }
        }
        my $n = keys %open;
        $maxopen = $n if !defined $maxopen || $n > $maxopen;
    }
};

# 40 publishes, spread over 4 seconds, against the black hole
my @pub;
for my $i (1 .. 40) {
    my $pid = open(my $fh, '-|') // die;
    if (!$pid) {
        exec $RTMPC, '-n', $key, '-t', '10000', "rtmp://127.0.0.1:$port/live";
    }
    push @pub, $fh;
    $watch->(0.1);
}
$maxopen = 0;
my $storm_start = time;
$watch->(3);
my $n_storm = grep { $_->[0] >= $storm_start } @accepted;
for my $fh (@pub) { my @o = <$fh>; close $fh }
cmp_ok($maxopen, '<=', 4, "black hole, 2 workers: at most one connect in flight per worker"
       . " (max $maxopen open at once, a closing one may still count)");
cmp_ok($n_storm, '<=', 12, "... and few attempts: $n_storm in 3 s");
like($ng->error_log, qr/timed out while connecting/, 'the hung connects are logged as timed out');
$ng->stop;
close $hole;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# --- 50 reloads while publishers stream and decisions are pending ---

$ng = Pgauth::Nginx->new(pg => $pg, workers => 2, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 2;',
    app => 'pgauth_query "SELECT a.* FROM pgauth.authorize($1, $2, $3, $4, $5) a,'
           . ' pg_sleep(0.2)";'));
$port = $ng->{rtmp_port};
my @keys = map { $pg->create_key("rl$_") } 1 .. 4;
my @ff = map { ffmpeg_publish("rtmp://127.0.0.1:$port/live/$keys[$_]", 30) } 0 .. 1;
sleep 2;
my ($ok, $bad, $maxb2) = (0, 0, 0);
for my $i (1 .. 50) {
    my @p;
    for my $j (1 .. 3) {
        my $pid = open(my $fh, '-|') // die;
        if (!$pid) {
            exec $RTMPC, '-n', $j == 3 ? 'wrong' : $keys[2 + $j % 2], '-t', '10000',
                 "rtmp://127.0.0.1:$port/live";
        }
        push @p, $fh;
    }
    sleep 0.05;
    $ng->reload;
    for my $fh (@p) {
        my @o = <$fh>;
        close $fh;
        my ($st) = grep { /^status / } @o;
        if ($st && $st =~ /NetStream\.(Publish\.(Start|Denied|BadName)|Failed)/) { $ok++ } else { $bad++ }
    }
    my $b = $pg->nginx_backends;
    $maxb2 = $b if $b > $maxb2;
}
is($bad, 0, "50 reloads with decisions pending: every client got an answer ($ok)");
ok(!grep({ waitpid($_, POSIX::WNOHANG()) } @ff), 'the publishers stream on through the reloads');
# the old workers that hold them stay, until they leave
kill 'INT', @ff;
waitpid $_, 0 for @ff;
ok(wait_for(10, sub { $pg->nginx_backends <= 4 }),
   "once they left, backends come back within 2 workers x pool of 2 (max seen during the reloads: $maxb2)");
# before the stop: a fast shutdown (TERM) does not wait for the ends of the
# sessions still being sent; the node's next start ends those (worker gone)
ok(wait_for(10, sub { $pg->open_sessions == 0 }), 'no session left open')
    or diag $pg->psql("SELECT string_agg(id || ' ' || stream_name || ' pid '"
                      . " || coalesce(worker_pid::text, '?') || ' since '"
                      . " || started_at::time, E'\n')"
                      . " FROM pgauth.sessions WHERE ended_at IS NULL"),
            "\n", join "\n", grep { /late|timed out|\[warn\]|\[crit\]|\[alert\]/ }
                                   split /\n/, $ng->error_log;
$ng->stop;
is(join("\n", $ng->bad_lines), '', '50 reloads: no alert (no open socket left), crash or sanitizer report');

done_testing();
