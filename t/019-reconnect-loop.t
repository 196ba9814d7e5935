#!/usr/bin/perl
# A streamer's reconnect loop: one name published and ended over and over,
# no vacuum between.  authorize() and take_over() read no more of
# pgauth.sessions for it after 1,500 ends than after 300 (PostgreSQL's own
# block counters say).  Under load, the mend this checks kept c's
# throughput from falling by up to a third within a minute
# (docs/benchmarks.md, what each step bought).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

need_tools('psql');

my $pg = Pgauth::Pg->new;

$pg->psql("ALTER TABLE pgauth.sessions SET (autovacuum_enabled = false)");

# A name published and ended over and over (a streamer's reconnect loop)
# leaves an entry in the live index for each end until the next vacuum.
# An index scan marks such entries dead as it passes them (once the row
# is dead to every transaction: here at once, under load soon after); a
# bitmap scan never does, and read the heap page of every one of them
# again at each authorize().  The statistics of a table under load (a few
# live sessions among many ended) made the planner take one.
my $flap = $pg->create_key('flap');
$pg->psql(<<'EOF');
INSERT INTO pgauth.sessions (key_id, stream_name, app, node, worker_pid,
                             ended_at, end_reason)
SELECT NULL::bigint,
       CASE WHEN i % 128 = 0 THEN 'flap' ELSE 'other' || (i % 128) END,
       'live', 'n1', 42,
       CASE WHEN i % 128 <> 0 AND i > 49800 THEN NULL ELSE now() END,
       'unpublish'
FROM generate_series(1, 50000) AS i;
-- the whole table sampled: the same statistics at every run
ALTER TABLE pgauth.sessions ALTER COLUMN stream_name SET STATISTICS 1000;
ANALYZE pgauth.sessions;
EOF
# a connection kept, as nginx's pool keeps them, its plans made on
# these statistics
my $kept = Pgauth::Psql->new($pg);
$kept->run("SELECT set_config('pgauth.node', 'n1', false),"
           . " set_config('pgauth.worker', '42', false)");
my $fdigest = "sha256(convert_to('$flap', 'UTF8'))";
my $heap_read = sub {
    $kept->run("SELECT pg_stat_force_next_flush()");
    return ($kept->run("SELECT heap_blks_hit + heap_blks_read"
                       . " FROM pg_statio_user_tables"
                       . " WHERE relid = 'pgauth.sessions'::regclass"))[0];
};
# the reads of ten publishes after 300 ends, and of ten after 1,500: one
# insert that fills a heap page and extends the table reads a few blocks
# more, in either window
my %read;
for my $n (1 .. 1500) {
    my $window = $n > 1490 ? 1500 : $n > 290 && $n <= 300 ? 300 : 0;
    my $before = $window ? $heap_read->() : 0;
    # as nginx asks: a takeover deferred to take_over()
    my ($id) = $kept->run("SELECT session_id FROM pgauth.authorize($fdigest,"
                          . " 'live', '127.0.0.1', '', 'takeover', true)");
    my $between = $window ? $heap_read->() : 0;
    $kept->run("SELECT pgauth.take_over($id)");
    if ($window) {
        $read{authorize}{$window} += $between - $before;
        $read{take_over}{$window} += $heap_read->() - $between;
    }
    $kept->run("SELECT pgauth.publish_done($id, 'unpublish')");
}
for my $f ('authorize', 'take_over') {
    diag "$f(), ten calls: $read{$f}{300} heap blocks of sessions read"
         . " after 300 ends of its name, $read{$f}{1500} after 1,500";
    cmp_ok($read{$f}{1500}, '<=', $read{$f}{300} + 10,
           "$f() reads no more of the table after 1,500 ends of its name"
           . ' than after 300, no vacuum between');
}

done_testing();
