#!/usr/bin/perl
# Decisions that queue up go to the database together, in one call of
# pgauth.authorize_many(): each gets its own answer (allowed under its own
# name, or refused), one whose client left while the batch was out has
# its session ended, and a batch the database refuses, or a schema
# without the function, leaves each decision to go alone; a schema without
# pgauth.look_up() leaves each publish to wait for its record.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new(conf => [ "shared_preload_libraries = 'pg_stat_statements'" ]);
$pg->psql("CREATE EXTENSION pg_stat_statements");

# one connection: a decision that waits holds up those behind it
my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_pool_size 1;',
    app => 'pgauth_timeout 20s;'));
my $port = $ng->{rtmp_port};

sub batches {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     . " WHERE query ~ 'authorize_many'");
}
sub waiting_on_lock {
    my ($re) = @_;
    return wait_for(10, sub {
        $pg->psql("SELECT count(*) FROM pg_stat_activity"
                  . " WHERE wait_event_type = 'Lock' AND query ~ '$re'") >= 1 });
}
sub hold_key {
    my ($name) = @_;
    my $h = Pgauth::Psql->new($pg);
    $h->{dbh}->begin_work;
    $h->{dbh}->do("SELECT FROM pgauth.stream_keys WHERE stream_name = '$name' FOR UPDATE");
    return $h;
}

my %key;
$key{$_} = $pg->create_key($_) for 'blocker', map({ "good$_" } 1 .. 20), 'blocker2', 'blocker3';

$pg->psql("SELECT pg_stat_statements_reset()");
my $hold = hold_key('blocker');
my $first = rtmpc_start($port, 'live', name => $key{blocker});
ok(waiting_on_lock('authorize'), 'a decision waits for a lock on its key');

my @good = map { rtmpc_start($port, 'live', name => $key{"good$_"}) } 1 .. 20;
my @bad = map { rtmpc_start($port, 'live', name => "wrong-key-$_") } 1 .. 5;
sleep 0.5;

# the batch itself waits too (good1's row), while good2's client goes
my $hold1 = hold_key('good1');
$hold->{dbh}->commit;
ok($first->wait_line(qr/Publish\.Start/, 10), 'the first decision answered: live');
ok(waiting_on_lock('authorize_many'), 'the 25 behind it went in one batch, waiting now');
kill 'KILL', $good[1]{pid};
sleep 0.3;
$hold1->{dbh}->commit;

my @live = grep { $good[$_]->wait_line(qr/Publish\.Start/, 10) } grep { $_ != 1 } 0 .. 19;
is(scalar @live, 19, 'each allowed one of the batch is live');
is(scalar(grep { $_->wait_line(qr/Publish\.Denied/, 10) } @bad), 5,
   '... each wrong key refused');
is(batches(), 1, '... in one call of authorize_many()');
is($pg->psql("SELECT string_agg(stream_name, ',' ORDER BY stream_name) FROM pgauth.sessions"
             . " WHERE ended_at IS NULL AND stream_name LIKE 'good%'"),
   join(',', sort map { "good$_" } grep { $_ != 2 } 1 .. 20),
   '... each under its own name');
ok(wait_for(5, sub { $pg->psql("SELECT end_reason FROM pgauth.sessions"
                               . " WHERE stream_name = 'good2'") eq 'client gone' }),
   'the one whose client left while the batch was out: its session ended');
like($ng->error_log, qr/late reply for app="live" .* ending session/,
     '... as a late reply');
kill 'KILL', map { $_->{pid} } $first, @good;
ok(wait_for(10, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") == 0 }),
   'all ended');

# the record of a publish live on its lookup, sent while decisions wait
# for the connection, goes in their batch, under the id the lookup drew
$key{"rec$_"} = $pg->create_key("rec$_") for 0 .. 5;
$pg->psql("SELECT pg_stat_statements_reset()");
my $keys = Pgauth::Psql->new($pg);
$keys->{dbh}->begin_work;
$keys->{dbh}->do("LOCK TABLE pgauth.stream_keys IN ACCESS EXCLUSIVE MODE");
my $looked = rtmpc_start($port, 'live', name => $key{rec0});
ok(waiting_on_lock('look_up'), 'a lookup waits for the keys');
my @queued = map { rtmpc_start($port, 'live', name => $key{"rec$_"}) } 1 .. 5;
sleep 0.5;
$keys->{dbh}->commit;
is(scalar(grep { $_->wait_line(qr/Publish\.Start/, 10) } $looked, @queued), 6,
   'the one live on its lookup and the five queued behind it are live');
like($ng->error_log, qr/name="rec0" .*via=lookup/, '... the first on its lookup');
ok(wait_for(10, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions"
                                . " WHERE stream_name LIKE 'rec%'"
                                . " AND ended_at IS NULL") == 6 }),
   '... each recorded');
is($pg->psql("SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(rows), 0)"
             . " FROM pg_stat_statements WHERE query ~ 'authorize_many'"),
   '1 6', '... by one call of authorize_many(), its record with them');
is($pg->psql("SELECT count(*) FROM pg_stat_statements"
             . " WHERE query ~ 'pgauth\\.authorize\\('"), 0, '... none alone');
is($pg->psql("SELECT min(stream_name) FROM pgauth.sessions"
             . " WHERE stream_name LIKE 'rec%' AND ended_at IS NULL"
             . " AND id = (SELECT min(id) FROM pgauth.sessions"
             . " WHERE stream_name LIKE 'rec%')"),
   'rec0', '... under the id its lookup drew, before the others');
kill 'KILL', map { $_->{pid} } $looked, @queued;
ok(wait_for(10, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") == 0 }),
   'all ended');

# a batch the database refuses (no right to run it): each goes alone
sub queue_and_release {
    my ($blocker) = @_;
    my $h = hold_key($blocker);
    my $b = rtmpc_start($port, 'live', name => $key{$blocker});
    waiting_on_lock('authorize');
    my @c = map { rtmpc_start($port, 'live', name => $key{"good$_"}) } 3 .. 12;
    sleep 0.5;
    $h->{dbh}->commit;
    my $n = grep { $_->wait_line(qr/Publish\.Start/, 10) } $b, @c;
    kill 'KILL', map { $_->{pid} } $b, @c;
    wait_for(10, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") == 0 });
    return $n;
}

$pg->psql("REVOKE EXECUTE ON FUNCTION pgauth.authorize_many(bytea[], text[], text[],"
          . " text[], text[], text[], bigint[]) FROM pgauth_nginx");
is(queue_and_release('blocker2'), 11, 'a batch the database refuses: each live still');
like($ng->error_log, qr/pgauth: a batch of 10 failed: .*permission denied.*; each is sent again alone/,
     '... sent again alone, as the log says');

$pg->psql("DROP FUNCTION pgauth.authorize_many(bytea[], text[], text[], text[], text[], text[], bigint[])");
is(queue_and_release('blocker3'), 11, 'a schema without authorize_many(): each live still');
like($ng->error_log, qr/the schema is older than the module \(apply the new pgauth\.sql\): decisions go one by one/,
     '... one by one, as the log says');

# pgauth_lookup_first against a role that may not run pgauth.look_up(),
# or a schema without it: the publish waits for its record instead, and
# the worker stops asking
$pg->psql("REVOKE EXECUTE ON FUNCTION pgauth.look_up(bytea, text) FROM pgauth_nginx");
my $ng2 = Pgauth::Nginx->new(pg => $pg);
ok($ng2->pool_ready, 'a pool connection is free: the lookup is asked');
my $r = rtmpc($ng2->{rtmp_port}, 'live', name => $pg->create_key('nogrant'));
is($r->{status}{code}, 'NetStream.Publish.Start', 'look_up() not granted: the publish goes live');
like($ng2->error_log, qr/pgauth: pgauth\.look_up\(\) failed: .*permission denied.*; publishes wait for their session to be recorded/,
     '... it waits for its record, as the log says');
$ng2->stop;
is(join("\n", $ng2->bad_lines), '', 'no alert, crash or sanitizer report');

$pg->psql("DROP FUNCTION pgauth.look_up(bytea, text)");
for my $i (1, 2) {
    $r = rtmpc($port, 'live', name => $pg->create_key("nolookup$i"));
    is($r->{status}{code}, 'NetStream.Publish.Start',
       "a schema without look_up(): publish $i goes live");
}
my @warned = $ng->error_log =~ /pgauth: pgauth\.look_up\(\) failed: .*does not exist.*; publishes wait for their session to be recorded/g;
is(scalar @warned, 1, '... the log says so, once');
unlike($ng->error_log, qr/name="nolookup\d" .*via=lookup/, '... on no lookup');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
