#!/usr/bin/perl
# nginx -s reload (and a binary upgrade) with publishers live: the old
# worker keeps them, as nginx does with pgauth off, and goes on beating and
# listening while it holds them: none of its sessions is swept as lost, a
# revoke and a takeover still reach it, and it exits once its last
# publisher has left.  pgauth_heartbeat 1s: three heartbeats are 3 s.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg');

my $pg = Pgauth::Pg->new;
my $conf = Pgauth::Nginx::default_conf(rtmp => 'pgauth_heartbeat 1s;');

sub key_id {
    my ($name) = @_;
    return $pg->psql("SELECT max(id) FROM pgauth.stream_keys"
                     . " WHERE stream_name = '$name'");
}

sub reload {
    my ($ng, $times) = @_;
    for (1 .. $times) {
        my %old = map { $_ => 1 } $ng->worker_pids;
        $ng->reload;
        wait_for(10, sub { grep { !$old{$_} } $ng->worker_pids })
            or return 0;
        sleep 1;
    }
    return 1;
}

for my $workers (1, 2) {
    my $ng = Pgauth::Nginx->new(pg => $pg, workers => $workers,
                                conf => $conf);
    my $port = $ng->{rtmp_port};
    my $w = "$workers worker" . ($workers > 1 ? 's' : '');
    my @names = map { "w${workers}cam$_" } 1 .. $workers;
    my %key = map { $_ => $pg->create_key($_) } @names;
    my %ff = map {
        $_ => ffmpeg_publish("rtmp://127.0.0.1:$port/live/$key{$_}", 60,
                             "$ng->{dir}/$_.log")
    } @names;

    ok(wait_for(15, sub { !grep { $ng->last_segment($_) < 1 } @names }),
       "$w: live and producing HLS");
    my @old = $ng->worker_pids;

    ok(reload($ng, 3), "$w: three reloads, new workers each time");
    my %seg = map { $_ => $ng->last_segment($_) } @names;
    my $t = time;
    sleep 5;

    for my $n (@names) {
        ok(running($ff{$n}), "$w, $n: the encoder streams on 5 s (5 heartbeats)"
                           . ' after the reloads');
        cmp_ok($ng->last_segment($n) - $seg{$n}, '>=', 3,
               "$w, $n: new HLS segments meanwhile ("
               . ($seg{$n} + 1) . '..' . $ng->last_segment($n) . ')');
        is($pg->open_sessions($n), 1, "$w, $n: its session is still open");
    }

    # those that hold a publisher are still there (one with none has gone)
    my @holding = grep { kill 0, $_ } @old;
    cmp_ok(scalar @holding, '>=', 1, "$w: the old workers with publishers run on");
    my $seen = $pg->psql("SELECT count(*) FROM pgauth.workers WHERE pid IN ("
                         . join(',', @holding) . ") AND seen_at > now() - interval '2.5 seconds'");
    is($seen, scalar @holding, "$w: ... and still beat");
    is($pg->psql("SELECT count(*) FROM pgauth.sessions"
                 . " WHERE end_reason = 'node lost'"), 0,
       "$w: no session swept as lost");

    # a revoke reaches the old worker
    my $n = $names[0];
    my $t1 = time;
    $pg->psql("SELECT pgauth.revoke_key(" . key_id($n) . ")");
    ok(wait_for(3, sub { !running($ff{$n}) }),
       sprintf "$w, $n: revoked, the old worker ends it (%.0f ms)",
               (time - $t1) * 1000);
    is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE stream_name = '$n'"),
       'revoked', "$w, $n: recorded as revoked");

    if ($workers > 1) {
        # a takeover through a new worker reaches the old one
        my $m = $names[1];
        my $again = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$key{$m}", 20,
                                   "$ng->{dir}/$m-again.log");
        ok(wait_for(5, sub { !running($ff{$m}) }),
           "$w, $m: a new publisher of the name takes it over from the old worker");
        ok(wait_for(10, sub { $pg->open_sessions($m) == 1 && running($again) }),
           "$w, $m: the new one is live");
        is($pg->psql("SELECT string_agg(coalesce(end_reason, 'live'), ',' ORDER BY id)"
                     . " FROM pgauth.sessions WHERE stream_name = '$m'"),
           'takeover,live', "$w, $m: the old session ended as taken over");
        kill 'INT', $again;
        waitpid $again, 0;
    }

    ok(wait_for(10, sub { !grep { kill 0, $_ } @old }),
       "$w: the old workers exit once their publishers have left");

    $ng->stop;
    is(join("\n", $ng->bad_lines), '', "$w: no alert, crash or sanitizer report");
}

# a binary upgrade: USR2 starts a new master, WINCH stops the old one's
# workers gracefully, QUIT the old master
my $ng = Pgauth::Nginx->new(pg => $pg, conf => $conf);
my $key = $pg->create_key('upgraded');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key", 60,
                        "$ng->{dir}/upgraded.log");
ok(wait_for(15, sub { $ng->last_segment('upgraded') >= 1 }), 'upgrade: live');
my $oldmaster = $ng->master_pid;
my @old = $ng->worker_pids;
$ng->signal('USR2');
ok(wait_for(10, sub { -s "$ng->{dir}/logs/nginx.pid.oldbin"
                      && ($ng->master_pid // 0) != $oldmaster }),
   'upgrade: a new master runs');
kill 'WINCH', $oldmaster;
sleep 1;
kill 'QUIT', $oldmaster;
my $seg = $ng->last_segment('upgraded');
sleep 5;
ok(running($ff), 'upgrade: the encoder streams on 5 s after the old master'
               . ' was told to quit');
cmp_ok($ng->last_segment('upgraded') - $seg, '>=', 3,
       'upgrade: with new HLS segments');
is($pg->open_sessions('upgraded'), 1, 'upgrade: its session is still open');
$pg->psql("SELECT pgauth.revoke_key(" . key_id('upgraded') . ")");
ok(wait_for(3, sub { !running($ff) }), 'upgrade: revoked, it ends');
ok(wait_for(10, sub { !grep { kill 0, $_ } @old, $oldmaster }),
   'upgrade: then the old workers and master exit');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'upgrade: no alert, crash or sanitizer report');

done_testing();
