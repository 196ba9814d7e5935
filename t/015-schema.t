#!/usr/bin/perl
# The database side: src/pgauth.sql applies twice, keeps digests only, and
# gives nginx's role nothing but the two functions it calls.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

need_tools('psql');

my $pg = Pgauth::Pg->new;

my $out = $pg->load_schema;
unlike($out, qr/ERROR/, 'the schema applies a second time without error');

my $key = $pg->create_key('alice');
like($key, qr/^[0-9a-f]{40}$/, 'create_key returns 40 hex digits (154 random bits)');
isnt($pg->create_key('alice'), $key, 'every key is new');

is($pg->psql("SELECT count(*) FROM pgauth.stream_keys WHERE stream_name = 'alice'"),
   2, 'two keys may publish one stream name');

is($pg->psql("SELECT count(*) FROM pgauth.stream_keys"
             . " WHERE key_digest = sha256(convert_to('$key', 'UTF8'))"),
   1, 'the key is stored as its SHA-256 digest');

my $dump = `pg_dump -h 127.0.0.1 -p $pg->{port} -U postgres -d pgauth --data-only 2>&1`;
unlike($dump, qr/\Q$key\E/, 'the key itself is nowhere in the database');

my $list = $pg->psql("SELECT * FROM pgauth.list_keys()");
unlike($list, qr/\Q$key\E/, 'list_keys shows no secret');
my $fp = substr(`printf %s '$key' | sha256sum`, 0, 8);
like($list, qr/\|\Q$fp\E$/m, 'list_keys shows the fingerprint nginx logs');

my ($id) = $pg->psql("SELECT id FROM pgauth.list_keys() ORDER BY id LIMIT 1");

sub authorize {
    my ($k, $app) = @_;
    $app ||= 'live';
    return $pg->psql("SELECT stream_name FROM pgauth.authorize("
                     . "sha256(convert_to('$k', 'UTF8')), '$app', '127.0.0.1', '')");
}

is(authorize($key), 'alice', 'authorize returns the public name');
is(authorize($key, 'other'), '', 'not in another application');
is(authorize('x' . $key), '', 'not for another key');

is($pg->psql("SELECT pgauth.disable_key($id)"), 't', 'disable_key');
is(authorize($key), '', 'a disabled key is refused');
is($pg->psql("SELECT pgauth.enable_key($id)"), 't', 'enable_key');
is(authorize($key), 'alice', 'enabled again');

my $short = $pg->create_key('bob', 'live', '1 second');
is(authorize($short), 'bob', 'a key with an expiry works before it');
sleep 2;
is(authorize($short), '', '... and not after');

is($pg->psql("SELECT pgauth.delete_key($id)"), 't', 'delete_key');
is(authorize($key), '', 'a deleted key is refused');
is($pg->psql("SELECT pgauth.delete_key(-1)"), '', 'deleting a missing key says so');

is($pg->psql("SELECT count(*) FROM pgauth.sessions"), 3,
   'each allowed authorization opened a session');
is($pg->psql("SELECT string_agg(stream_name || ':' || coalesce(end_reason, 'live'), ' ' ORDER BY id)"
             . " FROM pgauth.sessions"),
   'alice:revoked alice:deleted bob:live',
   'disabling and deleting a key ended its live sessions, with the reason');
my ($sid) = $pg->psql("SELECT max(id) FROM pgauth.sessions");
$pg->psql("SELECT pgauth.publish_done($sid, 'unpublish')");
is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE id = $sid"),
   'unpublish', 'publish_done records the end and its reason');

# least privilege: what nginx's role can and cannot do
my $k2 = $pg->create_key('carol');
my $as_nginx = sub {
    my ($sql) = @_;
    my $o = `psql -X -q -A -t -h 127.0.0.1 -p $pg->{port} -U pgauth_nginx -d pgauth -c "$sql" 2>&1`;
    chomp $o;
    return $o;
};

is($as_nginx->("SELECT stream_name FROM pgauth.authorize(sha256(convert_to('$k2', 'UTF8')), 'live', '::1', '')"),
   'carol', 'nginx role can authorize');
like($as_nginx->("SELECT pgauth.publish_done(1, 'unpublish')"), qr/^$/,
     'nginx role can record a session end');
like($as_nginx->("SELECT count(*) FROM pgauth.check_sessions('{1,2}')"), qr/^2$/,
     'nginx role can re-check sessions');
like($as_nginx->("SELECT count(*) FROM pgauth.worker_start('n', 1, 5000)"), qr/^\d+$/,
     'nginx role can register a worker');
like($as_nginx->("SELECT pgauth.heartbeat('n', 1, 5000)"), qr/^t$/,
     'nginx role can beat');
like($as_nginx->("SELECT pgauth.worker_gone('n', 1)"), qr/^$/,
     'nginx role can end a gone worker');
like($as_nginx->("SELECT pgauth.take_over(-1)"), qr/^f$/,
     'nginx role can take a stream over');

# the functions nginx calls run as pgauth_owner, not as whoever applied
# the file (a superuser here)
is($pg->psql("SELECT string_agg(DISTINCT pg_get_userbyid(proowner), ',')"
             . " FROM pg_proc WHERE pronamespace = 'pgauth'::regnamespace"),
   'pgauth_owner', 'every function belongs to pgauth_owner');
is($pg->psql("SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',')"
             . " FROM pg_class WHERE relnamespace = 'pgauth'::regnamespace"
             . " AND relkind = 'r'"),
   'pgauth_owner', '... and every table');
is($pg->psql("SELECT rolsuper::text || rolcanlogin::text || rolcreaterole::text"
             . " FROM pg_roles WHERE rolname = 'pgauth_owner'"),
   'falsefalsefalse', 'pgauth_owner is no superuser and cannot log in');
cmp_ok($pg->psql("SELECT count(*) FROM pg_proc WHERE prosecdef"
                 . " AND pronamespace = 'pgauth'::regnamespace"),
       '>=', 8, 'the SECURITY DEFINER functions are among them');

# publish_done ends only a session of the node the connection names
my $k3 = $pg->create_key('dave');
my $dsid = $as_nginx->("SELECT set_config('pgauth.node', 'n1', false); "
                       . "SELECT session_id FROM pgauth.authorize("
                       . "sha256(convert_to('$k3', 'UTF8')), 'live', '::1', '')");
($dsid) = $dsid =~ /(\d+)\s*\z/;
$as_nginx->("SELECT set_config('pgauth.node', 'n2', false); "
            . "SELECT pgauth.publish_done($dsid, 'unpublish')");
is($pg->psql("SELECT coalesce(end_reason, 'live') FROM pgauth.sessions WHERE id = $dsid"),
   'live', 'publish_done from another node ends nothing');
$as_nginx->("SELECT set_config('pgauth.node', 'n1', false); "
            . "SELECT pgauth.publish_done($dsid, 'unpublish')");
is($pg->psql("SELECT end_reason FROM pgauth.sessions WHERE id = $dsid"),
   'unpublish', '... from its own node it does');

# key management by what an operator has at hand: the stream name, or the
# fingerprint nginx logs (fp=), as well as the id
my $kf1 = $pg->create_key('frank');
my $kf2 = $pg->create_key('frank', 'other');
my $kg = $pg->create_key('grace');
my $gfp = $pg->psql("SELECT pgauth.fingerprint(sha256(convert_to('$kg', 'UTF8')))");
is($pg->psql("SELECT pgauth.revoke_key('frank')"), 2,
   'revoke_key by stream name: each of its keys, in every application');
is(authorize($kf1), '', '... refused');
is(authorize($kf2, 'other'), '', '... in the other application too');
is(authorize($kg), 'grace', '... another stream untouched');
is($pg->psql("SELECT pgauth.enable_key('frank')"), 2, 'enable_key by stream name');
is(authorize($kf1), 'frank', '... allowed again');
is($pg->psql("SELECT pgauth.revoke_key('$gfp')"), 1, 'revoke_key by the fingerprint of the log');
is(authorize($kg), '', '... refused');
is(authorize($kf1), 'frank', '... another key untouched');
is($pg->psql("SELECT pgauth.enable_key(upper('$gfp'))"), 1, '... any case');
is($pg->psql("SELECT pgauth.expire_key('grace', now() - interval '1 second')"), 1,
   'expire_key by stream name');
is(authorize($kg), '', '... refused');
is($pg->psql("SELECT pgauth.expire_key('grace', NULL)"), 1, '... and cleared');
is($pg->psql("SELECT pgauth.set_max_session('grace', '1 hour')"), 1,
   'set_max_session by stream name');
is($pg->psql("SELECT max_session FROM pgauth.stream_keys WHERE stream_name = 'grace'"),
   '01:00:00', '... set');
is($pg->psql("SELECT pgauth.revoke_key('nobody')"), 0, 'a name or fingerprint of no key: 0');
is($pg->psql("SELECT pgauth.revoke_key('0')"), 0, '... nor a short hex string');
is($pg->psql("SELECT pgauth.delete_key('frank')"), 2, 'delete_key by stream name');
is($pg->psql("SELECT count(*) FROM pgauth.stream_keys WHERE stream_name = 'frank'"), 0,
   '... gone');
is($pg->psql("SELECT pgauth.delete_key('grace')"), 1, '... and grace');

# ending: a live session the worker names as ending is not live for its
# decision (the publisher is back before its end is committed), only the
# worker's own: another's is refused under 'refuse', or taken over
my $k4 = $pg->create_key('erin');
my $decide = sub {
    my ($worker, $duplicate, $ending) = @_;
    my $o = $as_nginx->("SELECT set_config('pgauth.node', 'n1', false),"
                        . " set_config('pgauth.worker', '$worker', false); "
                        . "SELECT session_id || ' ' || takeover FROM pgauth.authorize("
                        . "sha256(convert_to('$k4', 'UTF8')), 'live', '::1', '',"
                        . " '$duplicate', true, '$ending')");
    return $o =~ /(\d+ (?:true|false))\s*\z/ ? $1 : $o;
};
my ($esid) = $decide->(11, 'refuse', '{}') =~ /^(\d+) false$/;
ok($esid, 'a session of worker 11');
like($decide->(11, 'refuse', '{}'), qr/already live/,
     '... its name refused to another publish under refuse');
like($decide->(11, 'refuse', "{$esid}"), qr/^\d+ false$/,
     '... allowed when worker 11 names it as ending');
like($decide->(11, 'takeover', "{$esid}"), qr/^\d+ true$/,
     '... which leaves the session just opened live: a takeover');
$pg->psql("UPDATE pgauth.sessions SET ended_at = now() WHERE stream_name = 'erin'"
          . " AND id <> $esid");
like($decide->(12, 'refuse', "{$esid}"), qr/already live/,
     '... refused when another worker names it');
like($decide->(11, 'takeover', "{$esid}"), qr/^\d+ false$/,
     '... no takeover when worker 11 names it');
is($pg->psql("SELECT coalesce(end_reason, 'live') FROM pgauth.sessions WHERE id = $esid"),
   'live', '... and naming it ends nothing (its end comes from publish_done)');
$pg->psql("UPDATE pgauth.sessions SET ended_at = now() WHERE stream_name = 'erin'");

# authorize_many() and authorize() as nginx and other callers use them: a
# publish of a name an earlier one in the same call takes is its takeover
my ($k5, $k6) = map { $pg->create_key($_) } 'fay', 'gus';
my $d = sub { "sha256(convert_to('$_[0]', 'UTF8'))" };
my $many = sub {
    my ($dup, @k) = @_;
    my $arr = sub { 'ARRAY[' . join(',', map { $_[0] } @k) . ']' };
    return $as_nginx->("SELECT set_config('pgauth.node', 'n1', false),"
                       . " set_config('pgauth.worker', '11', false); "
                       . "SELECT string_agg(n || ':' || stream_name || ':'"
                       . " || takeover, ' ' ORDER BY n)"
                       . " FROM pgauth.authorize_many(ARRAY["
                       . join(',', map { $d->($_) } @k) . "], "
                       . join(', ', map { $arr->($_) } "'live'", "'::1'", "''",
                                                       "'$dup'", "'{}'")
                       . ")");
};
my $sessions = sub {
    return $pg->psql("SELECT string_agg(coalesce(end_reason, 'live'), ' '"
                     . " ORDER BY id) FROM pgauth.sessions"
                     . " WHERE stream_name = '$_[0]'");
};
like($many->('takeover', $k5, $k6, $k5, 'x' . $k6),
     qr/(?:^|\n)1:fay:false 2:gus:false 3:fay:true\z/,
     'authorize_many: the second publish of fay in one call takes the'
     . ' first over; an unknown key has no row');
is($sessions->('fay'), 'live live', '... both recorded, left live');
my $alone = sub {
    my ($k, $defer) = @_;
    my $o = $as_nginx->("SELECT set_config('pgauth.node', 'n1', false),"
                        . " set_config('pgauth.worker', '11', false); "
                        . "SELECT takeover::text FROM pgauth.authorize("
                        . $d->($k) . ", 'live', '::1', '', 'takeover'"
                        . ($defer ? ', true' : '') . ")");
    return $o =~ /(true|false)\s*\z/ ? $1 : $o;
};
is($alone->($k5, 1), 'true',
   'authorize() deferred, no session named as ending: a takeover');
is($sessions->('fay'), 'live live live', '... nothing ended');
is($alone->($k5, 0), 'false', 'authorize() not deferred: no takeover left');
is($sessions->('fay'), 'takeover takeover takeover live',
   '... every other publisher of the name ended "takeover"');
like($many->('refuse', $k6), qr/already live/,
     'authorize_many under refuse: a name already live is refused');
is($sessions->('gus'), 'live', '... nothing recorded');
$pg->psql(<<'EOF');
INSERT INTO pgauth.workers (node, pid, seen_at, heartbeat)
VALUES ('n9', 99, now() - interval '1 hour', interval '1 second');
UPDATE pgauth.sessions SET node = 'n9', worker_pid = 99
WHERE stream_name = 'gus' AND ended_at IS NULL;
EOF
like($many->('refuse', $k6), qr/(?:^|\n)1:gus:false\z/,
     '... but not one of a worker that stopped beating');
is($sessions->('gus'), 'node lost live', '... which ends "node lost"');
$pg->psql("UPDATE pgauth.sessions SET ended_at = now()"
          . " WHERE stream_name IN ('fay', 'gus') AND ended_at IS NULL;"
          . " DELETE FROM pgauth.workers WHERE node = 'n9'");

# reserved: the id look_up() drew becomes the session's, if the sequence
# gave it out and no session has it
my $k7 = $pg->create_key('hal');
my $drawn = $as_nginx->("SELECT session_id FROM pgauth.look_up("
                        . $d->($k7) . ", 'live')");
like($drawn, qr/^\d+$/, 'look_up draws a session id');
my $with = sub {
    my ($id) = @_;
    my $o = $as_nginx->("SELECT set_config('pgauth.node', 'n1', false); "
                        . "SELECT session_id FROM pgauth.authorize("
                        . $d->($k7) . ", 'live', '::1', '', 'takeover', true,"
                        . " '{}', $id)");
    return $o =~ /(\d+)\s*\z/ ? $1 : $o;
};
is($with->($drawn), $drawn, '... authorize records the session under it');
my $again = $with->($drawn);
ok($again =~ /^\d+$/ && $again > $drawn, '... not twice: a new id then');
my $ahead = $again + 1000;
my $got = $with->($ahead);
ok($got =~ /^\d+$/ && $got < $ahead,
   '... nor one the sequence has not given out');
# two of one batch naming one id (nginx's role could): a session each
my $once = $as_nginx->("SELECT session_id FROM pgauth.look_up("
                       . $d->($k7) . ", 'live')");
my $pair = $as_nginx->("SELECT set_config('pgauth.node', 'n1', false); "
                       . "SELECT string_agg(session_id::text, ' ' ORDER BY n)"
                       . " FROM pgauth.authorize_many(ARRAY[" . $d->($k7)
                       . ", " . $d->($k7) . "], '{live,live}', '{::1,::1}',"
                       . " ARRAY['', ''], '{takeover,takeover}',"
                       . " '{NULL,NULL}', ARRAY[$once, $once])");
my @pair = $pair =~ /(\d+) (\d+)\s*\z/;
ok(@pair == 2 && $pair[0] == $once && $pair[1] > $once,
   "... one id named twice in a batch: the first gets it ($pair)");
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE id IN ("
             . join(',', @pair ? @pair : 0) . ")"), 2,
   '... each has its session');
$pg->psql("UPDATE pgauth.sessions SET ended_at = now()"
          . " WHERE stream_name = 'hal' AND ended_at IS NULL");

# what commits without waiting for the WAL flush (the publish's answer is
# not held for it), and what waits: the setting the calling transaction
# commits with, the session's own on (the test cluster's is off)
my $tx = Pgauth::Psql->new($pg);
my $commits_with = sub {
    my ($sql) = @_;
    my $dbh = $tx->{dbh};
    $dbh->do("SET synchronous_commit = on");
    $dbh->begin_work;
    $dbh->do("SELECT set_config('pgauth.node', 'n1', true)");
    $dbh->selectall_arrayref($sql);
    my ($v) = $dbh->selectrow_array("SHOW synchronous_commit");
    $dbh->rollback;
    return $v;
};
my $dk7 = $d->($k7);
is($commits_with->("SELECT * FROM pgauth.authorize($dk7, 'live', '::1',"
                   . " '')"), 'off', 'authorize commits without the flush');
is($commits_with->("SELECT * FROM pgauth.authorize_many(ARRAY[$dk7],"
                   . " '{live}', '{::1}', '{\"\"}', '{takeover}',"
                   . " '{NULL}')"), 'off', 'authorize_many too');
is($commits_with->("SELECT pgauth.take_over(1)"), 'off', 'take_over too');
is($commits_with->("SELECT pgauth.publish_done_many('{1}', '{unpublish}')"),
   'on', 'publish_done_many waits for the flush');

# history: ended sessions older than the given age go, live ones stay
$pg->psql("UPDATE pgauth.sessions SET ended_at = now() - interval '100 days'"
          . " WHERE id = $dsid");
my $live_before = $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL");
is($pg->psql("SELECT pgauth.purge_sessions('90 days')"), 1,
   'purge_sessions deletes what ended before the given age');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE id = $dsid"), 0,
   '... that session is gone');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL"),
   $live_before, '... live sessions are kept');
cmp_ok($pg->psql("SELECT pgauth.purge_sessions('0 seconds')"), '>', 0,
       '... with 0 seconds, every other ended one');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NOT NULL"),
   0, '... none left');

for my $sql ('SELECT * FROM pgauth.stream_keys',
             'SELECT * FROM pgauth.sessions',
             'SELECT * FROM pgauth.list_keys()',
             "SELECT pgauth.create_key('mallory')",
             'SELECT pgauth.disable_key(1)',
             'SELECT pgauth.delete_key(1)',
             'SELECT pgauth.revoke_key(1)',
             "SELECT pgauth.kick_stream('alice')",
             'SELECT * FROM pgauth.live_sessions()',
             'SELECT * FROM pgauth.workers',
             "SELECT pgauth.end_session(1, 'x')",
             "SELECT * FROM pgauth.decide('{}', '{}', '{}', '{}', '{}',"
             . " '{}', '{}')",
             "SELECT pgauth.purge_sessions('0 seconds')",
             "UPDATE pgauth.stream_keys SET enabled = true") {
    like($as_nginx->($sql), qr/permission denied/, "nginx role may not: $sql");
}

done_testing();
