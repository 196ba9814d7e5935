#!/usr/bin/perl
# Clients that leave while their decision is pending (slow query, client
# killed): nothing crashes, nothing leaks, the late reply touches nothing of
# the dead session, the pool stays usable.  Session ends are recorded for
# killed publishers.  A query slower than the timeout is refused at the
# deadline and cancelled in the server.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');
my $bob = $pg->create_key('bob');

my $slow = 'pgauth_query "SELECT a.stream_name, a.session_id'
         . ' FROM pgauth.authorize($1, $2, $3, $4) a, pg_sleep(1)";';
my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 2;',
    app => "pgauth_timeout 5s; $slow"));
my $port = $ng->{rtmp_port};

# one client drops its connection mid-decision
my $r = rtmpc($port, 'live', name => $key, drop => 300);
ok(!grep({ /^status/ } @{$r->{out}}), 'the client left before any decision');
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions") == 1 }),
   'the query completed in PostgreSQL after the client had gone');
ok(wait_for(5, sub { $pg->open_sessions == 0 }),
   'the late allowed reply closed the session it opened');
like($ng->error_log, qr/pgauth: late reply for app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8}, ending session "\d+"/,
     'the late reply is logged');

# twenty clients killed (SIGKILL) mid-decision at once
my @pids;
for my $i (1 .. 20) {
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        exec $RTMPC, '-n', $i % 2 ? $key : 'wrong', '-t', '10000',
             "rtmp://127.0.0.1:$port/live";
    }
    push @pids, $pid;
}
sleep 0.5;
kill 'KILL', @pids;
waitpid $_, 0 for @pids;

$r = rtmpc($port, 'live', name => $bob);
is($r->{status}{code}, 'NetStream.Publish.Start',
   'the pool is usable right after twenty clients died mid-decision');
ok(wait_for(8, sub { $pg->open_sessions == 0 }),
   'no session is left open by the dead clients');
cmp_ok($pg->nginx_backends, '<=', 2, 'backends stay within the pool size');

# a live publisher killed: its session end is recorded
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$key", 30);
ok(wait_for(15, sub { -s "$ng->{hls}/alice.m3u8" }), 'ffmpeg is live');
is($pg->open_sessions, 1, 'one open session while live');
kill 'KILL', $ff;
waitpid $ff, 0;
ok(wait_for(10, sub { $pg->open_sessions == 0 }),
   'the killed publisher\'s session end is recorded');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# a query slower than the timeout: refused at the deadline; the server
# cancels the statement (statement_timeout), the connection is reused
my $ng2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 1;',
    app => 'pgauth_timeout 1s; pgauth_query "SELECT a.stream_name,'
           . ' a.session_id FROM pgauth.authorize($1, $2, $3, $4) a,'
           . ' pg_sleep(CASE WHEN $4 = \'slow\' THEN 30 ELSE 0 END)";'));
$r = rtmpc($ng2->{rtmp_port}, 'live', name => "$key?slow");
is($r->{status}{code}, 'NetStream.Failed', 'slow query: refused');
cmp_ok($r->{status}{ms}, '<=', 1300, '... at the deadline');
ok(wait_for(3, sub {
    $pg->psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'"
              . " AND state = 'active' AND pid <> pg_backend_pid()") == 0
}), 'the server cancelled the slow statement');
$r = rtmpc($ng2->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'the next publish goes through');
like($ng2->error_log, qr/reason="(timed out|database error: ERROR:  canceling statement due to statement timeout)"/,
     'the refusal says why');
is($pg->nginx_backends, 1, 'one connection served both');
ok(wait_for(5, sub { $pg->open_sessions == 0 }), 'no session left open');

$ng2->stop;
is(join("\n", $ng2->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
