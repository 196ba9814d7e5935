#!/usr/bin/perl
# The decision cache: a refused key costs no query within the TTL; an
# allowed key goes live at once while the database confirms; a key change
# empties it on every worker; with pgauth_cache_fallback, recently allowed
# keys are admitted while the database is unreachable, and confirmed once
# it is back.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;
$pg->psql("CREATE TABLE public.calls (fp text, at timestamptz DEFAULT now())");
$pg->psql("GRANT INSERT ON public.calls TO pgauth_nginx");

# every authorization leaves a row, and takes 300 ms
my $query = 'pgauth_query "WITH c AS (INSERT INTO public.calls (fp)'
          . ' VALUES (encode($1, \'hex\')))'
          . ' SELECT a.* FROM pgauth.authorize($1, $2, $3, $4, $5) a, pg_sleep(0.3)";';

sub calls { $pg->psql("SELECT count(*) FROM public.calls") }

my $ng = Pgauth::Nginx->new(pg => $pg, workers => 2, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_cache_zone zone=decisions:1m ttl=30s;',
    app => "pgauth_cache zone=decisions; $query"));
my $port = $ng->{rtmp_port};
my $key = $pg->create_key('alice');

my $r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'first publish: asked the database');
cmp_ok($r->{status}{ms}, '>=', 300, "... waiting for it ($r->{status}{ms} ms)");

my @hit;
for (1 .. 4) {
    $r = rtmpc($port, 'live', name => $key, hold => 500);
    push @hit, $r->{status}{ms};
    is($r->{status}{code}, 'NetStream.Publish.Start', 'again: publishes');
}
cmp_ok((sort { $b <=> $a } @hit)[0], '<', 100, "cached: live at once, on either worker (@hit ms)");
like($ng->error_log, qr/pgauth: allowed app="live" name="alice" .* cache=hit/, 'the allowed line says cache=hit');
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE stream_name = 'alice'") == 5 }),
   'the database recorded every session (confirmation in the background)');
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") == 0 }),
   '... and every end');
like($ng->error_log, qr/pgauth: confirmed app="live" name="alice" fp=[0-9a-f]{8} session="\d+"/,
     'the confirmations are logged');

# a refused key: no query within the TTL
my $before = calls();
$r = rtmpc($port, 'live', name => 'wrong-key');
is($r->{status}{code}, 'NetStream.Publish.Denied', 'a wrong key is denied (asked)');
for (1 .. 5) {
    $r = rtmpc($port, 'live', name => 'wrong-key');
    is($r->{status}{code}, 'NetStream.Publish.Denied', 'again denied');
    cmp_ok($r->{status}{ms}, '<', 100, "... at once ($r->{status}{ms} ms)");
}
is(calls() - $before, 1, 'one query for six attempts with the wrong key');
like($ng->error_log, qr/reason="no matching key \(cached\)"/, 'logged as cached');

# a key change empties the cache on every worker
my $id = $pg->psql("SELECT id FROM pgauth.stream_keys WHERE stream_name = 'alice'");
$pg->psql("SELECT pgauth.revoke_key($id)");
sleep 0.3;
for (1 .. 3) {
    $r = rtmpc($port, 'live', name => $key);
    is($r->{status}{code}, 'NetStream.Publish.Denied', 'revoked: the cached allow is gone');
}
$pg->psql("SELECT pgauth.enable_key($id)");
sleep 0.3;
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'enabled again: the cached refusal is gone');

# a cached allow confirmed as refused: the publish ends
$r = rtmpc($port, 'live', name => $key);   # cached again
$pg->psql("ALTER TABLE pgauth.stream_keys DISABLE TRIGGER key_changed");
$pg->psql("UPDATE pgauth.stream_keys SET enabled = false WHERE id = $id");
$pg->psql("ALTER TABLE pgauth.stream_keys ENABLE TRIGGER key_changed");
my $c = rtmpc_start($port, 'live', name => $key);
ok($c->wait_line(qr/Publish\.Start/, 2), 'the cache did not hear of the change: live at once');
ok($c->wait_line(qr/^closed/, 3), '... and ended when the database says no');
ok(grep({ $_->[0] =~ /Stream key revoked/ } @{$c->{lines}}), '... saying so');
$pg->psql("UPDATE pgauth.stream_keys SET enabled = true WHERE id = $id");

# without fallback, the database down refuses even a cached key
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'cached again');
$pg->stop('fast');
$c = rtmpc_start($port, 'live', name => $key);
ok($c->wait_line(qr/Publish\.Start/, 2), 'database down, no fallback: the cached key starts');
ok($c->wait_line(qr/^closed/, 5), '... and is ended when the confirmation fails');
ok(grep({ $_->[0] =~ /Authorization unavailable/ } @{$c->{lines}}), '... as unavailable');
$pg->start;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# with fallback: admitted while the database is away, confirmed after
$ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_cache_zone zone=decisions:1m ttl=1s;',
    app => 'pgauth_cache zone=decisions; pgauth_cache_fallback 1h; pgauth_timeout 1s;'));
$port = $ng->{rtmp_port};
my $bob = $pg->create_key('bob');
$r = rtmpc($port, 'live', name => $bob);
is($r->{status}{code}, 'NetStream.Publish.Start', 'bob publishes');
sleep 1.5;   # past the TTL: the entry only serves as fallback now
$pg->stop('fast');
$c = rtmpc_start($port, 'live', name => $bob);
my ($l) = $c->wait_line(qr/^status /, 3);
like($l // '', qr/Publish\.Start/, 'database down: a key allowed within the fallback window is admitted');
like($ng->error_log, qr/\[warn\].*pgauth: admitted app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8} from the cache \(allowed \d+s ago\): database unreachable/,
     '... and that is logged at warn');
$r = rtmpc($port, 'live', name => 'never-seen');
is($r->{status}{code}, 'NetStream.Failed', 'a key the cache does not know is refused as unavailable');
ok(!$c->wait_line(qr/^closed/, 1.5), 'the admitted stream stays up while the database is away');
$pg->start;
ok(wait_for(10, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE stream_name = 'bob'"
                                . " AND ended_at IS NULL") == 1 }),
   'database back: the admitted session is recorded');
like($ng->error_log, qr/pgauth: confirmed app="live" name="bob"/, '... confirmed');
$c->stop;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# a full zone: old entries make room, which is no [crit]; a change of a
# key still reaches the cache
$ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_cache_zone zone=small:32k ttl=1m;',
    app => 'pgauth_cache zone=small;'));
$port = $ng->{rtmp_port};
for my $batch (0 .. 9) {
    my @b;
    for my $i (1 .. 40) {
        my $pid = open(my $fh, '-|') // die;
        if (!$pid) {
            exec $RTMPC, '-n', "wrong-$batch-$i", '-t', '5000',
                 "rtmp://127.0.0.1:$port/live";
        }
        push @b, $fh;
    }
    for my $fh (@b) { my @o = <$fh>; close $fh }
}
my $carol = $pg->create_key('carol');
$r = rtmpc($port, 'live', name => $carol);
is($r->{status}{code}, 'NetStream.Publish.Start', '400 refused keys later, in a 32k zone, a good key publishes');
$r = rtmpc($port, 'live', name => $carol);
like($ng->error_log, qr/allowed app="live" name="carol".*cache=hit/, '... and is cached');
$pg->psql("SELECT pgauth.revoke_key((SELECT id FROM pgauth.stream_keys WHERE stream_name = 'carol'))");
sleep 0.3;
$r = rtmpc($port, 'live', name => $carol);
is($r->{status}{code}, 'NetStream.Publish.Denied', '... revoked: the cache forgot it at once');
unlike($ng->error_log, qr/\[(crit|alert)\]/, 'a full zone logs no [crit] or [alert]');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# one cache, two applications: a change of the key drops what the cache
# knew of it in each (the second application closes the template's)
$ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_cache_zone zone=shared:1m ttl=1m;',
    app => "pgauth_cache zone=shared;\n}\n"
         . "application studio {\n live on;\n pgauth on;\n"
         . " pgauth_cache zone=shared;"));
$port = $ng->{rtmp_port};
my $dave = $pg->create_key('dave');
is(rtmpc($port, 'live', name => $dave)->{status}{code},
   'NetStream.Publish.Start', 'a key of "live" publishes there');
is(rtmpc($port, 'studio', name => $dave)->{status}{code},
   'NetStream.Publish.Denied', '... not in "studio"');
is(rtmpc($port, 'studio', name => $dave)->{status}{code},
   'NetStream.Publish.Denied', '... again');
like($ng->error_log, qr/app="studio".*no matching key \(cached\)/, '... from the cache');
$pg->psql("UPDATE pgauth.stream_keys SET app = 'studio' WHERE stream_name = 'dave'");
sleep 0.3;
is(rtmpc($port, 'studio', name => $dave)->{status}{code},
   'NetStream.Publish.Start', 'moved to "studio": the cache forgot its refusal there');
is(rtmpc($port, 'live', name => $dave)->{status}{code},
   'NetStream.Publish.Denied', '... and its allowance in "live"');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
