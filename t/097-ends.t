#!/usr/bin/perl
# The ends of sessions go to the database in batches (publish_done_many()):
# forty publishers gone at once are all recorded, in fewer transactions
# than ends; a publish alone ends at once; a publisher back before its end
# is recorded, or before the record of its session live on its lookup, is
# no takeover.

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
$pg->psql("SELECT pg_stat_statements_reset()");
my $ng = Pgauth::Nginx->new(pg => $pg);
my $port = $ng->{rtmp_port};

sub calls {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     . " WHERE query ~ '^SELECT pgauth.publish_done_many'");
}
sub open_sessions {
    return $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL");
}

my $key = $pg->create_key('alone');
my $r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'a publish');
ok(wait_for(3, sub { open_sessions() == 0 }), '... its end recorded at once');
is(calls(), 1, '... in one call');

my @keys = map { $pg->create_key("many$_") } 1 .. 40;
my @c = map { rtmpc_start($port, 'live', name => $_) } @keys;
ok(!grep({ !$_->wait_line(qr/Publish\.Start/, 10) } @c), 'forty publishers live');
is(open_sessions(), 40, '... forty sessions open');
$pg->psql("SELECT pg_stat_statements_reset()");
kill 'KILL', map { $_->{pid} } @c;
ok(wait_for(10, sub { open_sessions() == 0 }), 'all gone at once: every end recorded');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE stream_name LIKE 'many%'"
             . " AND end_reason IS NOT NULL"), 40, '... with its reason');
my $n = calls();
ok($n >= 1 && $n < 40, "... in $n calls");
diag "40 ends at once: $n calls of publish_done_many()";

# a publisher back while its end is still on its way (the batch waits
# here for a row lock): the decision names that session as ending, the
# publisher goes live at once, no takeover
my $back = $pg->create_key('back');
my $first = rtmpc_start($port, 'live', name => $back);
ok($first->wait_line(qr/Publish\.Start/, 10), 'a publisher live');
my $sid = $pg->psql("SELECT id FROM pgauth.sessions WHERE stream_name = 'back'"
                    . " AND ended_at IS NULL");
my $hold = Pgauth::Psql->new($pg);
$hold->{dbh}->begin_work;
$hold->{dbh}->do("SELECT FROM pgauth.sessions WHERE id = $sid FOR UPDATE");
$pg->psql("SELECT pg_stat_statements_reset()");
kill 'KILL', $first->{pid};
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pg_stat_activity"
                               . " WHERE wait_event_type = 'Lock'"
                               . " AND query ~ 'publish_done_many'") == 1 }),
   '... gone, its end waits in a batch');
my $t0 = time;
$r = rtmpc($port, 'live', name => $back);
is($r->{status}{code}, 'NetStream.Publish.Start', '... and back: live');
ok(time - $t0 < 2, sprintf('... at once (%.3f s), the end still waiting', time - $t0));
is($pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
             . " WHERE query ~ 'take_over'"), 0, '... without a takeover');
$hold->{dbh}->commit;
ok(wait_for(5, sub { open_sessions() == 0 }), 'the lock gone: both ends recorded');
is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE id = $sid"),
   'disconnect', '... the first as its own end, not a takeover');

# a publisher back while the record of its session, live on the lookup,
# is still on its way (here it waits for the key's row; a pool of one,
# so that the decision of the one back waits behind it): the decision
# names that session as ending under the id the lookup drew, no takeover
my $one = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
                                 rtmp => 'pgauth_pool_size 1;'));
my $early = $pg->create_key('early');
$hold->{dbh}->begin_work;
$hold->{dbh}->do("SELECT FROM pgauth.stream_keys WHERE stream_name = 'early'"
                 . " FOR UPDATE");
$first = rtmpc_start($one->{rtmp_port}, 'live', name => $early);
ok($first->wait_line(qr/Publish\.Start/, 10), 'a publisher live on its lookup');
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pg_stat_activity"
                               . " WHERE wait_event_type = 'Lock'"
                               . " AND query ~ 'authorize'") == 1 }),
   '... its record waits');
$pg->psql("SELECT pg_stat_statements_reset()");
kill 'KILL', $first->{pid};
waitpid $first->{pid}, 0;
my $again = rtmpc_start($one->{rtmp_port}, 'live', name => $early);
# its decision waits behind the record (nothing else can tell)
sleep 0.5;
$hold->{dbh}->commit;
ok($again->wait_line(qr/Publish\.Start/, 10), '... gone and back: live');
is($pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
             . " WHERE query ~ 'take_over'"), 0, '... without a takeover');
kill 'KILL', $again->{pid};
ok(wait_for(5, sub { open_sessions() == 0 }), 'both ends recorded');
is($pg->psql("SELECT string_agg(end_reason, ' ' ORDER BY id)"
             . " FROM pgauth.sessions WHERE stream_name = 'early'"),
   'disconnect disconnect', '... the first as its own end, not a takeover');
$one->stop;
is(join("\n", $one->bad_lines), '', '... no alert, crash or sanitizer report');

# a batch the database refuses (here: no right to run it): each end is
# tried again alone
$pg->psql("REVOKE EXECUTE ON FUNCTION pgauth.publish_done_many(bigint[], text[])"
          . " FROM pgauth_nginx");
my @refused = map { rtmpc_start($port, 'live', name => $_) } @keys[0 .. 9];
ok(!grep({ !$_->wait_line(qr/Publish\.Start/, 10) } @refused), 'ten publishers live');
kill 'KILL', map { $_->{pid} } @refused;
ok(wait_for(10, sub { open_sessions() == 0 }),
   'a batch refused by the database: every end recorded still');
like($ng->error_log, qr/pgauth: recording the end of sessions \{.*\} failed: .*; each is recorded alone/,
     '... alone, as the log says');
$pg->psql("GRANT EXECUTE ON FUNCTION pgauth.publish_done_many(bigint[], text[])"
          . " TO pgauth_nginx");

# a schema older than the module: the ends go one by one
$pg->psql("DROP FUNCTION pgauth.publish_done_many(bigint[], text[])");
my @old = map { rtmpc_start($port, 'live', name => $_) } @keys[0 .. 9];
ok(!grep({ !$_->wait_line(qr/Publish\.Start/, 10) } @old), 'ten publishers live again');
kill 'KILL', map { $_->{pid} } @old;
ok(wait_for(10, sub { open_sessions() == 0 }),
   'a schema without publish_done_many(): every end recorded still');
like($ng->error_log, qr/pgauth\.publish_done_many\(\) is not in the database \(apply the new pgauth\.sql\)/,
     '... and the log says why they go one by one');
$r = rtmpc($port, 'live', name => $key);
ok(wait_for(3, sub { open_sessions() == 0 }), '... the next end too');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
