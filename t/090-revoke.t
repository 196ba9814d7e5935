#!/usr/bin/perl
# Live control: a revoked, deleted or expired key is off the air within a
# second, on every worker and every node; nothing else is touched.  Prints
# the time from COMMIT to the TCP close (median and worst of 20) per worker
# count.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my $psql = Pgauth::Psql->new($pg);

sub key_id {
    my ($key) = @_;
    return $pg->psql("SELECT id FROM pgauth.stream_keys"
                     . " WHERE key_digest = sha256(convert_to('$key', 'UTF8'))");
}

sub recorded {
    my ($id) = @_;
    return wait_for(5, sub {
        $pg->psql("SELECT count(*) FROM pgauth.sessions"
                  . " WHERE key_id = $id AND ended_at IS NULL") == 1 });
}

# publish with key, run $sql (with :id for the key's id), return the
# milliseconds from the COMMIT's reply to the close, and the client
sub revoke_one {
    my ($ng, $name, $sql) = @_;
    my $key = $pg->create_key($name);
    my $id = key_id($key);
    my $c = rtmpc_start($ng->{rtmp_port}, 'live', name => $key);
    my ($line) = $c->wait_line(qr/^status .*NetStream\.Publish\.Start/, 10);
    return (undef, $c, 'not live') unless $line;
    # live on the lookup (pgauth_lookup_first), recorded right after: the
    # operator's statement finds the session (the moment before is below)
    return (undef, $c, 'not recorded') unless recorded($id);
    $sql =~ s/:id/$id/g;
    my (undef, $t0, $t1) = $psql->run($sql);
    my ($closed, $tc) = $c->wait_line(qr/^closed /, 5);
    return (undef, $c, 'not closed') unless $closed;
    # from the COMMIT's reply (the notification leaves at the COMMIT, so
    # this can be below zero), and from sending the statement
    return (($tc - $t1) * 1000, $c, $id, ($tc - $t0) * 1000);
}

my %figures;

for my $workers (1, 2) {
    my $ng = Pgauth::Nginx->new(pg => $pg, workers => $workers);
    my (@ms, @sent);
    my $bad = 0;
    for my $i (1 .. 20) {
        my ($ms, $c, $why, $from_sent) =
            revoke_one($ng, "w${workers}s$i", 'SELECT pgauth.revoke_key(:id)');
        if (!defined $ms) { $bad++; diag "revoke $i: $why"; next }
        push @ms, $ms;
        push @sent, $from_sent;
        my ($st) = grep { /^status .* error / } map { $_->[0] } @{$c->{lines}};
        $bad++, diag "revoke $i: no error status" unless $st
            && $st =~ /NetStream\.Publish\.Denied Stream key revoked$/;
    }
    is($bad, 0, "$workers worker(s): 20 revoked publishers got the reason and were closed");
    cmp_ok((sort { $b <=> $a } @ms)[0] // 1e9, '<', 2000,
           "$workers worker(s): every one within 2 s");
    $figures{$workers} = sprintf 'after the COMMIT reply: median %.1f ms,'
                                 . ' worst %.1f ms; after sending the'
                                 . ' revoke: median %.1f ms, worst %.1f ms',
                                 median(@ms), (sort { $b <=> $a } @ms)[0],
                                 median(@sent), (sort { $b <=> $a } @sent)[0];
    diag "TCP close, $workers worker(s), 20 revokes: $figures{$workers}";
    is($pg->psql("SELECT count(*) FROM pgauth.sessions"
                 . " WHERE stream_name LIKE 'w${workers}s%' AND end_reason = 'revoked'"),
       20, "$workers worker(s): every session end recorded as revoked");
    $ng->stop;
    is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');
}

my $ng = Pgauth::Nginx->new(pg => $pg, workers => 2);
my $port = $ng->{rtmp_port};

# ffmpeg, revoked while live; another key's stream is not touched
my $k1 = $pg->create_key('cam1');
my $k2 = $pg->create_key('cam2');
my $ff1 = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$k1", 30, "$ng->{dir}/ff1.log");
my $ff2 = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$k2", 30, "$ng->{dir}/ff2.log");
ok(wait_for(15, sub { -s "$ng->{hls}/cam1.m3u8" && -s "$ng->{hls}/cam2.m3u8" }),
   'two ffmpeg streams live');
my (undef, undef, $t1) = $psql->run('SELECT pgauth.revoke_key(' . key_id($k1) . ')');
ok(wait_for(2, sub { waitpid($ff1, POSIX::WNOHANG()) == $ff1 }),
   sprintf('revoked ffmpeg disconnected within 2 s (%.0f ms)', (time - $t1) * 1000));
like(Pgauth::slurp("$ng->{dir}/ff1.log"), qr/Stream key revoked|Broken pipe|Connection reset|I\/O error|Error/i,
     'ffmpeg saw the stream end');
sleep 1;
ok(kill(0, $ff2) && waitpid($ff2, POSIX::WNOHANG()) == 0, 'the other key\'s ffmpeg is still publishing');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE stream_name = 'cam2' AND ended_at IS NULL"),
   1, 'the other key\'s session is untouched');
kill 'INT', $ff2;
waitpid $ff2, 0;

# deleted key; expiry moved to now; kick_stream (the key stays valid)
for my $case ([ 'deleted', 'SELECT pgauth.delete_key(:id)', 'Stream key revoked' ],
              [ 'expired', 'SELECT pgauth.expire_key(:id)', 'Stream key expired' ],
              [ 'kicked', "SELECT pgauth.kick_stream('k_kicked')", 'Stream stopped by the operator' ],
              # a reason of the operator's own: the client reads the
              # general words, the log and the record the operator's
              [ 'maintenance', "SELECT pgauth.end_session(s.id, 'maintenance') FROM pgauth.sessions s"
                               . " WHERE s.stream_name = 'k_maintenance' AND s.ended_at IS NULL",
                'Stream ended by the server' ]) {
    my ($reason, $sql, $desc) = @$case;
    my ($ms, $c) = revoke_one($ng, "k_$reason", $sql);
    ok(defined $ms && $ms < 2000, "$reason: closed within 2 s");
    ok(grep({ $_->[0] =~ /error NetStream\.Publish\.Denied \Q$desc\E$/ } @{$c->{lines}}),
       "$reason: the client is told \"$desc\"");
    is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE stream_name = 'k_$reason'"),
       $reason, "$reason: recorded");
}
like($ng->error_log, qr/pgauth: ended app="live" name="k_maintenance" .*reason="maintenance"/,
     'maintenance: logged with the reason the database gave');
my $again = rtmpc($port, 'live', name => $pg->create_key('k_kicked2'));
is($again->{status}{code}, 'NetStream.Publish.Start', 'after a kick the key still publishes');

# pgauth_lookup_first: live on the lookup while the key's row is held, so
# that authorize(), the record, waits for $hold's transaction; returns the
# client and the key's id
my $hold = Pgauth::Psql->new($pg);
sub live_record_held {
    my ($name) = @_;
    my $key = $pg->create_key($name);
    my $id = key_id($key);
    ok($ng->pool_ready, "$name: a pool connection is free in each worker");
    $hold->{dbh}->begin_work;
    $hold->run("SELECT id FROM pgauth.stream_keys WHERE id = $id FOR UPDATE");
    my $c = rtmpc_start($port, 'live', name => $key);
    ok($c->wait_line(qr/Publish\.Start/, 5), "$name: live on the lookup, before the session is recorded");
    ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pg_stat_activity"
                                   . " WHERE wait_event_type = 'Lock'"
                                   . " AND query ~ 'pgauth\\.authorize'") == 1 }),
       "$name: ... its record waits for the key");
    return ($c, $id);
}

# the key revoked before the session is recorded: the record's answer
# ends the publish, as the revoke would have
my ($c, $wid) = live_record_held('window');
$hold->run("SELECT pgauth.revoke_key($wid)");
$hold->{dbh}->commit;
ok($c->wait_line(qr/^closed/, 2), '... revoked before the record: the record\'s answer ends it');
ok(grep({ $_->[0] =~ /error NetStream\.Publish\.Denied Stream key revoked$/ } @{$c->{lines}}),
   '... the client is told "Stream key revoked"');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE key_id = $wid"), 0,
   '... and no session was recorded');
like($ng->error_log, qr/pgauth: allowed app="live" name="window" .* via=lookup/,
     '... the allowed line says it went live on the lookup');

# the publisher leaves before the record's answer: the session the record
# opens ends, for the reason it left
($c, my $gid) = live_record_held('gone');
$c->stop;
sleep 0.3;
$hold->{dbh}->rollback;
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions"
                               . " WHERE key_id = $gid AND ended_at IS NOT NULL") == 1 }),
   '... gone before the answer: the session recorded is ended');
is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE key_id = $gid"), 'disconnect',
   '... for the reason the publisher left');

# the key expires while live
my $short = $pg->create_key('short', 'live', '2 seconds');
$c = rtmpc_start($port, 'live', name => $short);
my ($l, $tstart) = $c->wait_line(qr/Publish\.Start/, 5);
ok($l, 'a key with 2 s left publishes');
my ($cl, $tclose) = $c->wait_line(qr/^closed/, 5);
ok($cl, 'and is closed when the key expires');
cmp_ok($tclose - $tstart, '<=', 2.5, sprintf('... at the expiry (%.2f s after start)', $tclose - $tstart));
ok(grep({ $_->[0] =~ /Stream key expired$/ } @{$c->{lines}}), '... saying why');
is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE stream_name = 'short'"),
   'expired', '... recorded as expired');

# the longest session of a key
my $lim = $pg->create_key('limited');
$pg->psql('SELECT pgauth.set_max_session(' . key_id($lim) . ", '2 seconds')");
$c = rtmpc_start($port, 'live', name => $lim);
($l, $tstart) = $c->wait_line(qr/Publish\.Start/, 5);
($cl, $tclose) = $c->wait_line(qr/^closed/, 5);
ok($cl && $tclose - $tstart <= 2.5, 'a key with a 2 s session limit is closed at 2 s');

# longer than the longest timer nginx is given (3 s in the sanitizer build):
# the rest is timed when it runs out
my $longer = $pg->create_key('longer');
$pg->psql('SELECT pgauth.set_max_session(' . key_id($longer) . ", '4.5 seconds')");
$c = rtmpc_start($port, 'live', name => $longer);
($l, $tstart) = $c->wait_line(qr/Publish\.Start/, 5);
($cl, $tclose) = $c->wait_line(qr/^closed/, 7);
ok($cl && $tclose - $tstart >= 4.2 && $tclose - $tstart <= 5.2,
   sprintf('a 4.5 s session limit is closed at 4.5 s (%.2f s)',
           ($tclose // 0) - $tstart));

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# two nginx nodes on one database: each ends its own
my $n1 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(rtmp => 'pgauth_node n1;'));
my $n2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(rtmp => 'pgauth_node n2;'));
my @ms;
for my $i (1 .. 5) {
    for my $n ($n1, $n2) {
        my ($ms) = revoke_one($n, "node$i$n->{rtmp_port}", 'SELECT pgauth.revoke_key(:id)');
        push @ms, $ms if defined $ms;
    }
}
is(scalar @ms, 10, 'two nodes: 10 revoked publishers closed');
cmp_ok((sort { $b <=> $a } @ms)[0] // 1e9, '<', 2000, 'two nodes: every one within 2 s');
diag sprintf 'COMMIT to TCP close, two nodes, 10 revokes: median %.1f ms, worst %.1f ms',
             median(@ms), (sort { $b <=> $a } @ms)[0];
is($pg->psql("SELECT string_agg(DISTINCT node, ',' ORDER BY node) FROM pgauth.sessions WHERE stream_name LIKE 'node%'"),
   'n1,n2', 'sessions name their node');

# the LISTEN connection is lost, the revoke happens meanwhile: the re-check
# on reconnecting enforces it
my $key = $pg->create_key('lost');
$c = rtmpc_start($n1->{rtmp_port}, 'live', name => $key);
ok($c->wait_line(qr/Publish\.Start/, 5), 'live on n1');
$pg->psql("ALTER ROLE pgauth_nginx NOLOGIN");
$pg->psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
          . " WHERE application_name = 'nginx-rtmp-pgauth-listen'");
sleep 0.5;
$pg->psql('SELECT pgauth.revoke_key(' . key_id($key) . ')');
sleep 0.5;
ok(!$c->wait_line(qr/^closed/, 0.5), 'with no LISTEN connection the notification is lost');
my $t = time;
$pg->psql("ALTER ROLE pgauth_nginx LOGIN");
ok($c->wait_line(qr/^closed/, 5), sprintf('on reconnecting, the re-check ends it (%.2f s)', time - $t));
like($n1->error_log, qr/pgauth: idle listen connection #\d+ closed by the server/, 'the lost LISTEN connection was noticed');

# a session the database does not know (authorize() commits without the
# WAL flush: a crash of PostgreSQL may lose the last sessions, as if their
# rows were deleted): the re-check on reconnecting ends it
my $unrecorded = $pg->create_key('unrecorded');
$c = rtmpc_start($n1->{rtmp_port}, 'live', name => $unrecorded);
ok($c->wait_line(qr/Publish\.Start/, 5), 'live on n1');
$pg->psql("ALTER ROLE pgauth_nginx NOLOGIN");
$pg->psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
          . " WHERE application_name = 'nginx-rtmp-pgauth-listen'");
sleep 0.5;
$pg->psql("DELETE FROM pgauth.sessions WHERE stream_name = 'unrecorded'");
$t = time;
$pg->psql("ALTER ROLE pgauth_nginx LOGIN");
ok($c->wait_line(qr/^closed/, 5),
   sprintf('a session the database lost ends on reconnecting (%.2f s)', time - $t));
like($n1->error_log, qr/name="unrecorded".*reason="unknown"/, '... as "unknown"');
my $r = rtmpc($n1->{rtmp_port}, 'live', name => $unrecorded);
is($r->{status}{code}, 'NetStream.Publish.Start', '... and its publisher comes back');

$n1->stop;
$n2->stop;
is(join("\n", $n1->bad_lines, $n2->bad_lines), '', 'no alert, crash or sanitizer report');

# periodic re-check without LISTEN
my $n3 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_listen off; pgauth_recheck 1s;'));
$key = $pg->create_key('polled');
$c = rtmpc_start($n3->{rtmp_port}, 'live', name => $key);
ok($c->wait_line(qr/Publish\.Start/, 5), 'live with pgauth_listen off and pgauth_recheck 1s');
is($pg->listen_backends, 0, 'no LISTEN connection');
$t = time;
$pg->psql('SELECT pgauth.revoke_key(' . key_id($key) . ')');
ok($c->wait_line(qr/^closed/, 3), sprintf('the periodic re-check ends the revoked one (%.2f s)', time - $t));

# the database unreachable during a re-check: kept by default ...
$key = $pg->create_key('kept');
$c = rtmpc_start($n3->{rtmp_port}, 'live', name => $key);
ok($c->wait_line(qr/Publish\.Start/, 5), 'live');
# live on its lookup: its record must be in first (one that fails ends
# the publish as unverified, which is not what this is about)
ok(wait_for(5, sub { $n3->error_log =~ /confirmed app="live" name="kept"/ }),
   '... its session recorded');
$pg->stop('fast');
ok(!$c->wait_line(qr/^closed/, 4), 'database down: the stream is kept (pgauth_recheck_failure keep)');
like($n3->error_log, qr/re-check of 1 live sessions failed, they go on/, '... and that is logged');
$pg->start;
$n3->stop;

# ... or ended
my $n4 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_recheck 1s; pgauth_recheck_failure end; pgauth_timeout 1s;'));
$key = $pg->create_key('ended');
$c = rtmpc_start($n4->{rtmp_port}, 'live', name => $key);
ok($c->wait_line(qr/Publish\.Start/, 5), 'live');
$pg->stop('fast');
ok($c->wait_line(qr/^closed/, 5), 'database down: with pgauth_recheck_failure end the stream is ended');
ok(grep({ $_->[0] =~ /Authorization unavailable/ } @{$c->{lines}}), '... telling the client');
$pg->start;
$n4->stop;
is(join("\n", $n3->bad_lines, $n4->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
