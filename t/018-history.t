#!/usr/bin/perl
# A year of history: with 1,000,000 ended sessions in the table, what nginx
# calls on every publish, every heartbeat and every re-check, and deleting
# a key, reads no more of the table than it needs: no sequential scan of
# pgauth.sessions (PostgreSQL's own counter says); nor of 100,000 keys.  The timings are in
# make bench; this checks the plans they come from, and that plans made
# while the tables were young do not scan them once they have grown.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Pgauth;

need_tools('psql');

my $pg = Pgauth::Pg->new;

# nginx's connections keep the plans they make.  Plans made while the
# session tables were small, and kept as they grew (a new installation
# under load: nothing analyzes them again before autovacuum comes), may
# scan the whole table at every call: publish_done_many() did, and held
# the row locks of the ends it carried meanwhile.
$pg->psql("ALTER TABLE pgauth.sessions SET (autovacuum_enabled = false);"
          . " ALTER TABLE pgauth.viewer_sessions"
          . " SET (autovacuum_enabled = false)");
my $young = $pg->create_key('young');
my $token = $pg->psql("SELECT pgauth.create_viewer_token('young')");
my $kept = Pgauth::Psql->new($pg);
$kept->run("SELECT set_config('pgauth.node', 'n1', false),"
           . " set_config('pgauth.worker', '42', false)");
my $digest = "sha256(convert_to('$young', 'UTF8'))";
my $vdigest = "sha256(convert_to('$token', 'UTF8'))";
my %on_young = (
    'authorize' => "SELECT session_id FROM pgauth.authorize($digest,"
                   . " 'live', '127.0.0.1', '', 'takeover')",
    'authorize_many' => "SELECT session_id FROM pgauth.authorize_many("
                        . "ARRAY[$digest], '{live}', '{127.0.0.1}', '{\"\"}',"
                        . " '{takeover}', '{NULL}')",
    # a session of its own, live: take_over()'s whole way
    'take_over' => "SELECT pgauth.take_over(session_id)"
                   . " FROM pgauth.authorize($digest, 'live', '127.0.0.1',"
                   . " '', 'takeover', true)",
    'publish_done' => "SELECT pgauth.publish_done(max(id), 'unpublish')"
                      . " FROM pgauth.sessions",
    'publish_done_many' => "SELECT pgauth.publish_done_many(array_agg(id),"
                           . " array_agg('unpublish'::text))"
                           . " FROM (SELECT id FROM pgauth.sessions"
                           . " ORDER BY id DESC LIMIT 3) l",
    'worker_register' => "SELECT count(*)"
                         . " FROM pgauth.worker_register('n1', 42, 5000, 'h')",
    'heartbeat' => "SELECT pgauth.heartbeat('n1', 42, 5000, 'h')",
    'authorize_viewer' => "SELECT session_id FROM pgauth.authorize_viewer("
                          . "$vdigest, 'live', 'young', '127.0.0.1', 'hls')",
);
# past the custom plans, to the generic ones the connection keeps
for my $what (sort keys %on_young) {
    $kept->run($on_young{$what}) for 1 .. 7;
}
$pg->psql(<<'EOF');
INSERT INTO pgauth.sessions (key_id, stream_name, app, node, worker_pid,
                             ended_at, end_reason)
SELECT NULL::bigint, 'grown' || (i % 500), 'live', 'n1', 42, now(),
       'unpublish'
FROM generate_series(1, 20000) AS i;
INSERT INTO pgauth.viewer_sessions (token_id, stream_name, app, protocol,
                                    node, worker_pid, until, ended_at)
SELECT NULL::bigint, 'grown', 'live', 'hls', 'n1', 42, now(), now()
FROM generate_series(1, 20000) AS i;
EOF
# the connection's own counters, sent when it is idle after each
my $kept_scans = sub {
    $kept->run("SELECT pg_stat_force_next_flush()");
    return ($kept->run("SELECT sum(seq_scan) FROM pg_stat_user_tables"
                       . " WHERE relid IN ('pgauth.sessions'::regclass,"
                       . " 'pgauth.viewer_sessions'::regclass)"))[0];
};
for my $what (sort keys %on_young) {
    my $before = $kept_scans->();
    $kept->run($on_young{$what});
    is($kept_scans->() - $before, 0,
       "$what, its plans made on young tables, reads no more of them"
       . ' than it needs once 20,000 sessions older');
}
undef $kept;
# its sessions ended: the counts below are of the year's
$pg->psql("UPDATE pgauth.sessions SET ended_at = now(), end_reason = 'test'"
          . " WHERE ended_at IS NULL;"
          . " ALTER TABLE pgauth.sessions RESET (autovacuum_enabled);"
          . " ALTER TABLE pgauth.viewer_sessions RESET (autovacuum_enabled)");

my $t0 = time;
$pg->psql(<<'EOF');
INSERT INTO pgauth.sessions
    (key_id, stream_name, app, client_addr, started_at, ended_at,
     end_reason, node, worker_pid)
SELECT NULL::bigint, 'old' || (i % 5000), 'live', '192.0.2.1',
       now() - interval '1 year' + i * interval '30 seconds',
       now() - interval '1 year' + i * interval '30 seconds'
           + interval '20 minutes',
       'unpublish', 'node' || (i % 3), 1000 + i % 50
FROM generate_series(1, 1000000) AS i;
ANALYZE pgauth.sessions;
EOF
diag sprintf '1,000,000 ended sessions loaded in %.1f s', time - $t0;

# live sessions of this node, opened the way nginx opens them
my $nginx = sub {
    my ($sql) = @_;
    my $o = `psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $pg->{port} -U pgauth_nginx -d pgauth -c "SELECT set_config('pgauth.node', 'n1', false), set_config('pgauth.worker', '42', false)" -c "$sql" 2>&1`;
    die "$sql: $o" if $?;
    my @l = split /\n/, $o;
    shift @l;
    return join "\n", @l;
};

my @keys = map { $pg->create_key("live$_") } 1 .. 20;
my @ids;
for my $k (@keys) {
    push @ids, $nginx->("SELECT session_id FROM pgauth.authorize("
                        . "sha256(convert_to('$k', 'UTF8')), 'live',"
                        . " '127.0.0.1', '', 'takeover')");
}
is(scalar(grep { /^\d+$/ } @ids), 20, '20 live sessions');

sub seq_scans {
    return $pg->psql("SELECT seq_scan FROM pg_stat_user_tables"
                     . " WHERE relid = 'pgauth.sessions'::regclass");
}

my $array = '{' . join(',', @ids) . '}';
my $spare = $pg->create_key('spare');
my %calls = (
    'check_sessions of 20 live sessions' =>
        "SELECT count(*) FROM pgauth.check_sessions('$array')",
    'authorize' =>
        "SELECT session_id FROM pgauth.authorize(sha256(convert_to('$keys[0]',"
        . " 'UTF8')), 'live', '127.0.0.1', '', 'takeover')",
    'take_over' => "SELECT pgauth.take_over($ids[1])",
    'publish_done' => "SELECT pgauth.publish_done($ids[2], 'unpublish')",
    'heartbeat' => "SELECT pgauth.heartbeat('n1', 42, 5000, 'h')",
    'worker_register' =>
        "SELECT count(*) FROM pgauth.worker_register('n1', 43, 5000, 'h')",
);

for my $what (sort keys %calls) {
    my $before = seq_scans();
    my $t = time;
    $nginx->($calls{$what}) for 1 .. 5;
    my $ms = (time - $t) * 1000 / 5;
    is(seq_scans() - $before, 0,
       sprintf '%s reads no more than it needs (%.1f ms a call, psql included)',
               $what, $ms);
}

# Ends since the last vacuum leave their entries in the partial indexes of
# live sessions (ended_at IS NULL).  publish_done_many() finds what it
# ends by the primary key alone.  A plan through those indexes, made
# while they were small and kept by the connection, read every such entry
# at every call: its ends grew slower with each end until the next vacuum.
# (It is planned at every call now; the statements give it no such way.)
$pg->psql("ALTER TABLE pgauth.sessions SET (autovacuum_enabled = false)");
my @ending = map {
    my $k = $pg->create_key("ending$_");
    $nginx->("SELECT session_id FROM pgauth.authorize("
             . "sha256(convert_to('$k', 'UTF8')), 'live',"
             . " '127.0.0.1', '', 'takeover')")
} 1 .. 3;
my $ends = join ',', @ending;
my $done = "SELECT pgauth.publish_done_many('{$ends}',"
           . " '{unpublish,unpublish,unpublish}')";
$kept = Pgauth::Psql->new($pg);
$kept->run("SELECT set_config('pgauth.node', 'n1', false)");
# as many calls as a generic plan would take to be kept
$kept->run($done) for 1 .. 7;
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE id IN ($ends)"
             . " AND ended_at IS NOT NULL AND end_reason = 'unpublish'"),
   3, 'publish_done_many ends its sessions');
$pg->psql(<<'EOF');
INSERT INTO pgauth.sessions (key_id, stream_name, app, node, worker_pid)
SELECT NULL::bigint, 'gone' || (i % 500), 'live', 'n1', 42
FROM generate_series(1, 20000) AS i;
UPDATE pgauth.sessions SET ended_at = now(), end_reason = 'unpublish'
WHERE stream_name LIKE 'gone%';
EOF
$kept->{dbh}->begin_work;
$kept->run($done);
my ($scans) = $kept->run("SELECT sum(pg_stat_get_xact_numscans(c.oid))"
                         . " FROM pg_class c"
                         . " WHERE c.relnamespace = 'pgauth'::regnamespace"
                         . " AND c.relname IN ('sessions_live',"
                         . " 'sessions_live_key', 'sessions_live_worker')");
$kept->{dbh}->commit;
is($scans, 0, '... and reads no index of live sessions then'
              . ' (20,000 ends since the last vacuum)');
$pg->psql("ALTER TABLE pgauth.sessions RESET (autovacuum_enabled)");

my $before = seq_scans();
my $id = $pg->psql("SELECT id FROM pgauth.stream_keys WHERE stream_name = 'spare'");
$pg->psql("SELECT pgauth.delete_key($id)");
is(seq_scans() - $before, 0, 'deleting a key does not scan the history');

my $t = time;
my $purged = $pg->psql("SELECT pgauth.purge_sessions('90 days')");
diag sprintf 'purge_sessions(\'90 days\'): %d rows in %.1f s', $purged, time - $t;
cmp_ok($purged, '>', 700000, 'purge_sessions removes the old history');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL"),
   19, '... and keeps every live session');

# A platform with 100,000 keys: a batch of decisions looks its keys up
# by their digests.  A plan sized for 1000 of them (what
# generate_subscripts() tells the planner) read every key into a hash
# at every batch: 30 ms.
$pg->psql(<<'EOF');
INSERT INTO pgauth.stream_keys (key_digest, stream_name, app)
SELECT sha256(convert_to('many' || i, 'UTF8')), 'many' || i, 'live'
FROM generate_series(1, 100000) AS i;
ANALYZE pgauth.stream_keys;
EOF
my $many = Pgauth::Psql->new($pg);
$many->run("SELECT set_config('pgauth.node', 'n1', false),"
           . " set_config('pgauth.worker', '42', false)");
my $batch = "SELECT count(*) FROM pgauth.authorize_many(ARRAY["
            . join(', ', map { "sha256(convert_to('many$_', 'UTF8'))" }
                         1 .. 3)
            . "], '{live,live,live}', '{a,b,c}', '{\"\",\"\",\"\"}',"
            . " '{takeover,takeover,takeover}', '{NULL,NULL,NULL}')";
my $key_scans = sub {
    $many->run("SELECT pg_stat_force_next_flush()");
    return ($many->run("SELECT seq_scan FROM pg_stat_user_tables"
                       . " WHERE relid = 'pgauth.stream_keys'::regclass"))[0];
};
# past the custom plans, to the generic one the connection keeps
$many->run($batch) for 1 .. 7;
$before = $key_scans->();
my ($allowed) = $many->run($batch);
is($allowed, 3, 'a batch of 3 among 100,000 keys allows 3');
is($key_scans->() - $before, 0, '... and reads no key but its own');
undef $many;

done_testing();
