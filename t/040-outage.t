#!/usr/bin/perl
# PostgreSQL down: publishes are refused within pgauth_timeout, HTTP is
# served all along, and once PostgreSQL is back publishes succeed without
# touching nginx.  Also when PostgreSQL is already down as nginx starts.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $timeout_ms = 1500;

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');
my $conf = Pgauth::Nginx::default_conf(app => "pgauth_timeout ${timeout_ms}ms;");
my $ng = Pgauth::Nginx->new(pg => $pg, conf => $conf);
my $port = $ng->{rtmp_port};

my $r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'publishes while PostgreSQL is up');

$pg->stop('fast');

for my $i (1 .. 3) {
    # a publish pending while HTTP is asked
    my $pid = open(my $fh, '-|') // die;
    if (!$pid) {
        exec $RTMPC, '-n', $key, '-t', '10000', "rtmp://127.0.0.1:$port/live";
    }
    sleep 0.2;
    my ($code, $body, $secs) = http_get($ng->{http_port}, '/ping');
    is($code, 200, "outage $i: HTTP is served while a decision waits");
    cmp_ok($secs, '<', 0.5, "outage $i: ... promptly");

    my @out = <$fh>;
    close $fh;
    my ($st) = grep { /^status / } @out;
    like($st || '', qr/^status \S+ error NetStream\.Failed Authorization unavailable, try again later$/,
         "outage $i: refused as unavailable") or diag @out;
    my ($ms) = ($st || '') =~ /^status ([\d.]+)/;
    cmp_ok($ms || 1e9, '<=', $timeout_ms + 300,
           "outage $i: refused within pgauth_timeout ($timeout_ms ms)");
    ok(grep({ /^closed/ } @out), "outage $i: then closed");
}

like($ng->error_log, qr/pgauth: refused app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8} reason="timed out"/,
     'the refusal is logged with its reason');
like($ng->error_log, qr/pgauth: connection #\d+: connect failed: .*(refused|No such file)/,
     'the failed connect is logged with libpq\'s reason');

$pg->start;

$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start',
   'PostgreSQL back: the next publish succeeds, no nginx restart');
$r = rtmpc($port, 'live', name => 'wrong');
is($r->{status}{code}, 'NetStream.Publish.Denied', '... and a wrong key is denied again');

# nginx started while PostgreSQL is down
$pg->stop('fast');
my $ng2 = Pgauth::Nginx->new(pg => $pg, conf => $conf);
ok($ng2->master_pid, 'nginx starts while PostgreSQL is down');
my ($code) = http_get($ng2->{http_port}, '/ping');
is($code, 200, '... serves HTTP');
$r = rtmpc($ng2->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Failed', '... refuses publishes');
cmp_ok($r->{status}{ms}, '<=', $timeout_ms + 300, '... within the timeout');
$pg->start;
$r = rtmpc($ng2->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', '... and publishes once PostgreSQL is up');

# restart while idle connections are pooled: they are noticed and replaced
$pg->stop('fast');
$pg->start;
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start',
   'after a PostgreSQL restart the pool reconnects for the next publish');
like($ng->error_log, qr/idle connection #\d+ closed by the server/,
     'the pooled connection closed by the restart was noticed while idle');

for my $n ($ng, $ng2) {
    $n->stop;
    is(join("\n", $n->bad_lines), '', 'no alert, crash or sanitizer report');
}

done_testing();
