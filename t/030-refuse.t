#!/usr/bin/perl
# Refusals: the client gets an onStatus error it can print, then the close;
# nothing reaches the HLS folder; the key is never said to exist or not.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my $ng = Pgauth::Nginx->new(pg => $pg);
my $port = $ng->{rtmp_port};

my $good = $pg->create_key('alice');
my $disabled = $pg->create_key('bob');
$pg->psql("SELECT pgauth.disable_key(id) FROM pgauth.list_keys()"
          . " WHERE stream_name = 'bob'");
my $expired = $pg->create_key('carol', 'live', '1 millisecond');
my $other_app = $pg->create_key('dave', 'studio');
select undef, undef, undef, 0.1;

my @cases = (
    [ 'wrong key',            name => 'f' x 40 ],
    [ 'disabled key',         name => $disabled ],
    [ 'expired key',          name => $expired ],
    [ 'key of another app',   name => $other_app ],
    [ 'empty name',           hex => '' ],
    [ '255-byte name',        len => 255 ],
    [ 'over-long name (4000)', len => 4000 ],
    [ 'SQL-looking name',     name => "' OR 1=1--" ],
    [ 'SQL-looking name with arguments',
      name => "x'); DROP TABLE pgauth.stream_keys;--?a=1' OR '1'='1" ],
    [ 'control bytes',        hex => '61016202630a64' ],
    [ 'invalid UTF-8',        hex => 'c328ffa0a1' ],
    [ 'valid key, different case', name => uc $good ],
);

for my $c (@cases) {
    my ($what, %o) = @$c;
    my $r = rtmpc($port, 'live', %o);
    is($r->{exit}, 1, "$what: refused with an onStatus error")
        or diag join "\n", @{$r->{out}};
    is($r->{status}{level}, 'error', "$what: level error");
    is($r->{status}{code}, 'NetStream.Publish.Denied',
       "$what: NetStream.Publish.Denied");
    is($r->{status}{desc}, 'Stream key rejected',
       "$what: the same description for every bad key");
    ok($r->{closed}, "$what: the server closes after the status");
    ok(!grep({ /NetStream.Publish.Start/ } @{$r->{out}}),
       "$what: never Publish.Start");
}

is(join(' ', $ng->hls_files), '', 'nothing was written to the HLS folder');
is($pg->psql("SELECT count(*) FROM pgauth.stream_keys"), 4,
   'the SQL-looking input did nothing to the tables');
is($pg->psql("SELECT count(*) FROM pgauth.sessions"), 0,
   'no session was opened for a refused key');

# ffmpeg prints the description
my $out = `ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc -t 1 -c:v libx264 -f flv rtmp://127.0.0.1:$port/live/wrongkey 2>&1`;
isnt($? >> 8, 0, 'ffmpeg with a wrong key fails');
like($out, qr/Server error: Stream key rejected/,
     'ffmpeg prints the refusal');

# the good key still works after all that, SQL-looking arguments or not
my $r = rtmpc($port, 'live',
              name => "$good?x=1'); DROP TABLE pgauth.stream_keys;--");
is($r->{status}{code}, 'NetStream.Publish.Start',
   'the valid key publishes, SQL-looking arguments are only data');
is($pg->psql("SELECT count(*) FROM pgauth.stream_keys"), 4,
   '... and the tables are intact');

my @lines = grep { /pgauth: refused/ } split /\n/, $ng->error_log;
is(scalar @lines, scalar @cases + 1, 'one refusal line per refused publish');
ok(!grep({ /\Q$good\E|\Q$disabled\E|\Q$expired\E/ } grep { /pgauth:/ } split /\n/, $ng->error_log),
   'no key in our log lines');
like($ng->error_log, qr/pgauth: refused app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8} reason="empty stream key"/,
     'an empty name is refused without a query');

# raw keys (pgauth_key_hash none): a key that is not UTF-8 is refused
# before PostgreSQL could choke on it
my $ng2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    app => 'pgauth_key_hash none;'));
ok($ng2->pool_ready, 'key_hash none: a pool connection is free');
$r = rtmpc($ng2->{rtmp_port}, 'live', name => $good);
is($r->{status}{code}, 'NetStream.Publish.Start', 'key_hash none: the valid key publishes');
like($ng2->error_log, qr/pgauth: allowed app="live" .* via=lookup/, '... on the lookup of its digest');
unlike($ng2->error_log, qr/look_up\(\) failed/, '... which did not fail');
$r = rtmpc($ng2->{rtmp_port}, 'live', hex => 'c328ffa0a1');
is($r->{status}{code}, 'NetStream.Publish.Denied', 'key_hash none: invalid UTF-8 is denied');
like($ng2->error_log, qr/reason="stream key is not UTF-8"/, '... before any query');
$r = rtmpc($ng2->{rtmp_port}, 'live', name => "' OR 1=1--");
is($r->{status}{code}, 'NetStream.Publish.Denied', 'key_hash none: SQL-looking key denied');

for my $n ($ng, $ng2) {
    $n->stop;
    is(join("\n", $n->bad_lines), '', 'no alert, crash or sanitizer report');
}

done_testing();
