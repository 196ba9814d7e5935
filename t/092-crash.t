#!/usr/bin/perl
# A node that dies (kill -9) must not block its streams: restarted, its
# workers end the sessions of the gone ones at once; never restarted, its
# sessions end when it misses three heartbeats.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('cam');

sub conf {
    my ($node) = @_;
    return Pgauth::Nginx::default_conf(
        rtmp => "pgauth_node $node; pgauth_heartbeat 1s;",
        app => 'pgauth_duplicate refuse;');
}

sub kill9 {
    my ($ng) = @_;
    kill 'KILL', $ng->all_pids;
    $ng->{running} = 0;
}

sub reasons {
    return $pg->psql("SELECT string_agg(coalesce(end_reason, 'live'), ' ' ORDER BY id)"
                     . " FROM pgauth.sessions WHERE stream_name = 'cam'");
}

# killed and restarted
my $n1 = Pgauth::Nginx->new(pg => $pg, workers => 2, conf => conf('n1'));
my $a = rtmpc_start($n1->{rtmp_port}, 'live', name => $key);
ok($a->wait_line(qr/Publish\.Start/, 5), 'live on node n1');
kill9($n1);
ok($a->wait_line(qr/^closed/, 3), 'node n1 killed with -9');
is(reasons(), 'live', 'its session is left open in the database');

my $t = time;
my $n1b = Pgauth::Nginx->new(pg => $pg, workers => 2, conf => conf('n1'));
ok(wait_for(5, sub { reasons() eq 'worker gone' }),
   sprintf('n1 restarted: its workers end the gone workers\' sessions (%.2f s)', time - $t));
my $r = rtmpc($n1b->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'the stream publishes again on the restarted node');
is($pg->psql("SELECT count(*) FROM pgauth.workers WHERE node = 'n1'"), 2,
   'only the live workers of n1 stay registered');
$n1b->stop;

# killed for good: another node takes over its names after three missed
# heartbeats
my $n2 = Pgauth::Nginx->new(pg => $pg, conf => conf('n2'));
my $n3 = Pgauth::Nginx->new(pg => $pg, conf => conf('n3'));
my $b = rtmpc_start($n2->{rtmp_port}, 'live', name => $key);
ok($b->wait_line(qr/Publish\.Start/, 5), 'live on node n2');
kill9($n2);
$t = time;
$r = rtmpc($n3->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.BadName',
   'right after n2 died, n3 still sees the stream live (refuse)');
ok(wait_for(8, sub {
    rtmpc($n3->{rtmp_port}, 'live', name => $key)->{status}{code} eq 'NetStream.Publish.Start'
}), sprintf('once n2 missed three heartbeats (1 s), n3 publishes it (%.1f s)', time - $t));
like(reasons(), qr/node lost/, 'the dead node\'s session ended as "node lost"');

$n3->stop;
is(join("\n", $n1b->bad_lines, $n3->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
