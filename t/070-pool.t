#!/usr/bin/perl
# The pool under load: 200 publishes in a row through a pool of 2, a burst
# of concurrent ones, a full queue, two workers, auto_push.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my @keys = map { $pg->create_key("s$_") } 1 .. 5;

# bursts publish concurrently: one name per publisher, or nginx-rtmp's live
# module rightly answers BadName to the second publisher of a name
my @burst_keys = map { $pg->create_key("b$_") } 1 .. 40;

my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 2;'));
my $port = $ng->{rtmp_port};

my ($right, $wrong, $maxb) = (0, 0, 0);
for my $i (1 .. 200) {
    my $good = $i % 3 != 0;
    my $name = $good ? $keys[$i % 5] : "bad$i";
    my $r = rtmpc($port, 'live', name => $name);
    my $want = $good ? 'NetStream.Publish.Start' : 'NetStream.Publish.Denied';
    if ($r->{status}{code} eq $want) { $right++ } else {
        $wrong++;
        diag "publish $i: want $want, got $r->{status}{code}";
    }
    if ($i % 25 == 0) {
        my $b = $pg->nginx_backends;
        $maxb = $b if $b > $maxb;
    }
}
is($right, 200, '200 publishes in a row: every decision right');
cmp_ok($maxb, '<=', 2, "backends never above the pool size of 2 (max seen $maxb)");
cmp_ok($maxb, '>=', 1, '... and the pool was used');

my $bursts = sub {
    my ($p, $n, %o) = @_;
    my @fh;
    for my $i (1 .. $n) {
        my $name = $i % 2 ? $burst_keys[$i - 1] : "bad$i";
        my $pid = open(my $fh, '-|') // die;
        if (!$pid) {
            exec $RTMPC, '-n', $name, '-t', '15000', "rtmp://127.0.0.1:$p/live";
        }
        push @fh, [ $fh, $i % 2 ];
    }
    my %count;
    for my $f (@fh) {
        my ($fh, $good) = @$f;
        my @out = <$fh>;
        close $fh;
        my ($st) = grep { /^status / } @out;
        my ($code) = ($st || 'status 0 - none') =~ /^status \S+ \S+ (\S+)/;
        $count{$good ? "good $code" : "bad $code"}++;
    }
    return \%count;
};

my $c = $bursts->($port, 40);
is($c->{'good NetStream.Publish.Start'}, 20, 'burst of 40: every valid key published')
    or diag explain $c;
is($c->{'bad NetStream.Publish.Denied'}, 20, 'burst of 40: every bad key denied');
cmp_ok($pg->nginx_backends, '<=', 2, 'backends still within the pool size');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# a full queue refuses at once instead of waiting
my $ng2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 1; pgauth_queue_size 2;',
    app => 'pgauth_timeout 10s; pgauth_query "SELECT a.stream_name,'
           . ' a.session_id FROM pgauth.authorize($1, $2, $3, $4) a,'
           . ' pg_sleep(0.5)";'));
$c = $bursts->($ng2->{rtmp_port}, 10);
my $failed = ($c->{'good NetStream.Failed'} || 0)
           + ($c->{'bad NetStream.Failed'} || 0);
cmp_ok($failed, '>=', 5, "queue of 2, pool of 1, 10 at once: the excess is refused ($failed)");
like($ng2->error_log, qr/reason="too many decisions queued"/, '... saying why');
$ng2->stop;
is(join("\n", $ng2->bad_lines), '', 'no alert, crash or sanitizer report');

# two workers, with auto_push: the pushed copies are not authorized again
my $ng3 = Pgauth::Nginx->new(pg => $pg, workers => 2,
    conf => Pgauth::Nginx::default_conf(
        main => "rtmp_auto_push on;\nrtmp_socket_dir %%DIR%%;",
        rtmp => 'pgauth_pool_size 2;'));
is(scalar(() = $ng3->worker_pids), 2, 'two workers run');
$c = $bursts->($ng3->{rtmp_port}, 40);
is($c->{'good NetStream.Publish.Start'}, 20, 'two workers: every valid key published')
    or diag explain $c;
is($c->{'bad NetStream.Publish.Denied'}, 20, 'two workers: every bad key denied');
cmp_ok($pg->nginx_backends, '<=', 4, 'backends within 2 workers x pool of 2');

my %pids = map { /\[notice\] (\d+)#/ ? ($1 => 1) : () }
           grep { /pgauth: allowed/ } split /\n/, $ng3->error_log;
diag "decisions taken by " . scalar(keys %pids) . " worker(s)";

my $before = () = $ng3->error_log =~ /pgauth: allowed/g;
$pg->psql("TRUNCATE pgauth.sessions");
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$ng3->{rtmp_port}/live/$keys[0]", 4);
ok(wait_for(15, sub { -s "$ng3->{hls}/s5.m3u8" || -s "$ng3->{hls}/s1.m3u8" }), 'auto_push: live');
waitpid $ff, 0;
my $after = () = $ng3->error_log =~ /pgauth: allowed/g;
is($after - $before, 1, 'auto_push: one decision for one publish');
is($pg->psql("SELECT count(*) FROM pgauth.sessions"), 1,
   'auto_push: one session for one publish');
like($ng3->error_log, qr/auto_push|relay/, 'auto_push did push to the other worker');

# reloads: old workers close their idle connections at once, the new ones
# open their own on demand
for my $i (1 .. 5) {
    $ng3->reload;
    sleep 0.3;
    my $r = rtmpc($ng3->{rtmp_port}, 'live', name => $keys[1]);
    is($r->{status}{code}, 'NetStream.Publish.Start', "publish after reload $i");
}
ok(wait_for(5, sub { $pg->nginx_backends <= 4 }),
   'after 5 reloads the backends are still within 2 workers x pool of 2');

# the pid before the signal: a quitting nginx removes its pid file
my $master = $ng3->master_pid;
$ng3->signal('QUIT');
ok(wait_for(10, sub { !kill 0, $master }), 'graceful quit');
$ng3->{running} = 0;
is(join("\n", $ng3->bad_lines), '',
   'no alert (no open socket left), crash or sanitizer report');
ok(wait_for(3, sub { $pg->nginx_backends == 0 }),
   'all connections closed on quit');

# One publish at a time runs on one backend: the record after its
# lookup, and its end, go on the connection that answered, once its
# handlers are done, not on the other one (a backend woken from sleep:
# 5% to 11% of publishes 5 ms apart were 0.5 ms slower for it).  Which
# backend ran each statement, from PostgreSQL's log.
$pg->psql($_) for "ALTER SYSTEM SET log_min_duration_statement = 0",
                  "ALTER SYSTEM SET log_line_prefix = 'pid=%p '",
                  "SELECT pg_reload_conf()";
my $one = Pgauth::Nginx->new(pg => $pg);
ok(wait_for(5, sub { $pg->nginx_backends == 2 }),
   'one at a time: the pool has its 2 connections');
my $from = -s $pg->{log};
for my $i (1 .. 10) {
    my $r = rtmpc($one->{rtmp_port}, 'live', name => $keys[$i % 5]);
    is($r->{status}{code}, 'NetStream.Publish.Start', "one at a time: $i live");
    ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions"
                                   . " WHERE ended_at IS NULL") == 0 }),
       "one at a time: $i ended");
}
$pg->psql($_) for "ALTER SYSTEM RESET log_min_duration_statement",
                  "ALTER SYSTEM RESET log_line_prefix",
                  "SELECT pg_reload_conf()";
my $stmt = qr/^pid=(\d+) .*execute \S+: SELECT .*/
           . qr/pgauth\.(look_up|authorize|publish_done_many)\(/;
$stmt = qr/$stmt/;
my @ran = map { $_ =~ $stmt ? "$2 $1" : () }
          split /\n/, substr(Pgauth::slurp($pg->{log}), $from);
is(scalar(@ran), 30, 'one at a time: the log has their 30 statements');
my @apart;
while (@ran) {
    my @p = splice @ran, 0, 3;
    my %pids = map { (split / /)[1] => 1 } @p;
    push @apart, "@p" if @p != 3 || $p[0] !~ /^look_up/ || keys %pids != 1;
}
is(scalar(@apart), 0,
   'one at a time: each lookup, its record and its end on one backend')
    or diag explain \@apart;
$one->stop;
is(join("\n", $one->bad_lines), '', 'no alert, crash or sanitizer report');

# The default pool is 2 connections (pgauth_pool_size), also when every
# one of them waits: the rows of four keys locked by an operator's open
# transaction, four publishes of them in turn.  Each goes live on its
# lookup while a connection is free and its record waits on the lock,
# holding that connection; the others wait in the queue, no third
# connection is opened for them.
my @held = map { $pg->create_key("held$_") } 1 .. 4;
my $ng4 = Pgauth::Nginx->new(pg => $pg);
my $lock = Pgauth::Psql->new($pg);
$lock->{dbh}->begin_work;
$lock->{dbh}->do("UPDATE pgauth.stream_keys SET max_session = max_session"
                 . " WHERE stream_name LIKE 'held%'");
my @pubs;
for my $k (@held) {
    push @pubs, rtmpc_start($ng4->{rtmp_port}, 'live', name => $k,
                            hold => 5000);
    sleep 0.3;
}
my ($live) = $pubs[0]->wait_line(qr/NetStream\.Publish\.Start/, 5);
ok($live, 'the default pool: the first publish is live on its lookup');
sleep 0.5;
is($pg->nginx_backends, 2,
   'the default pool: 2 connections while both wait on the lock and two'
   . ' publishes wait for them');
$lock->{dbh}->rollback;
my @answers = ($live, map { ($_->wait_line(qr/^status /, 10))[0] // 'none' }
                         @pubs[1 .. 3]);
is(scalar(grep { /NetStream\.Publish\.Start/ } @answers[0, 1]), 2,
   'the default pool: the two on the connections are live')
    or diag explain \@answers;
is(scalar(grep { /^status / } @answers), 4,
   'the default pool: the two that waited for a connection are answered');
$_->stop for @pubs;
my $r = rtmpc($ng4->{rtmp_port}, 'live', name => $keys[2]);
is($r->{status}{code}, 'NetStream.Publish.Start',
   'the default pool: a publish after the lock is released goes live');
cmp_ok($pg->nginx_backends, '<=', 2, 'the default pool: still 2 at most');
$ng4->stop;
is(join("\n", $ng4->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
