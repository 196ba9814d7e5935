#!/usr/bin/perl
# A valid key publishes with ffmpeg: HLS appears under the public name and
# decodes; the key is in no file name and in none of our log lines; the
# session is recorded from start to end.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg', 'ffprobe', $RTMPC);

# every statement logged, with its parameters: the key must not be there
my $pg = Pgauth::Pg->new(conf => [ "log_statement = 'all'",
                                   "log_min_duration_statement = 0" ]);
my $ng = Pgauth::Nginx->new(pg => $pg);
my $port = $ng->{rtmp_port};

my $key = $pg->create_key('alice');

# our client first: the exact reply
my $r = rtmpc($port, 'live', name => $key);
is($r->{exit}, 0, 'valid key: publish starts');
is($r->{status}{code}, 'NetStream.Publish.Start', '... with NetStream.Publish.Start');

# ffmpeg, as a streamer would
my $log = "$ng->{dir}/ffmpeg.log";
my $t0 = time;
# pgauth_lookup_first asks its lookup when a pool connection is free
ok($ng->pool_ready, 'a pool connection is free');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$key", 6, $log);

ok(wait_for(15, sub { -s "$ng->{hls}/alice.m3u8" }),
   'HLS playlist is named after the public name');
ok(wait_for(15, sub { my @ts = grep { /^alice-\d+\.ts$/ } $ng->hls_files;
                      @ts >= 2 }),
   'HLS segments carry the public name');

my ($code, $body) = http_get($ng->{http_port}, '/hls/alice.m3u8');
is($code, 200, 'the playlist is served over HTTP');
like($body, qr/#EXTM3U/, '... and is a playlist');

my $probe = `ffprobe -v error -show_entries stream=codec_name -of csv=p=0 http://127.0.0.1:$ng->{http_port}/hls/alice.m3u8 2>&1`;
like($probe, qr/h264/, 'ffprobe decodes the video of the HLS stream');
like($probe, qr/aac/, '... and the audio');

is($pg->psql("SELECT count(*) FROM pgauth.sessions"
             . " WHERE stream_name = 'alice' AND ended_at IS NULL"),
   1, 'the live publish is an open session');
is($pg->psql("SELECT client_addr FROM pgauth.sessions ORDER BY id DESC LIMIT 1"),
   '127.0.0.1', '... with the client address');

waitpid $ff, 0;
is($? >> 8, 0, 'ffmpeg published to the end') or diag Pgauth::slurp($log);

ok(wait_for(5, sub {
    $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") == 0
}), 'a clean end of publish is recorded (ended_at)');
is($pg->psql("SELECT count(*) FROM pgauth.sessions"), 2,
   'one session per publish');

# the secret stays secret
my @files = $ng->hls_files;
ok(!grep({ /\Q$key\E/ } @files), 'the key is in no HLS file name');
my @ours = grep { /pgauth:/ } split /\n/, $ng->error_log;
ok(@ours >= 4, 'our decision lines are in the error log');
ok(!grep({ /\Q$key\E/ } @ours), 'the key is in none of our log lines');
my $pglog = Pgauth::slurp($pg->{log});
like($pglog, qr/pgauth\.authorize\(\$1, \$2, \$3, \$4, \$5, true, \$6::bigint\[\](?:,\s+\$7::bigint)?\)/,
     'PostgreSQL logged the authorization statements');
# "parameters:" up to PostgreSQL 15, "Parameters:" from 16 on
like($pglog, qr/DETAIL:  [Pp]arameters: \$1 = '\\x[0-9a-f]{64}'/,
     '... with the digest as $1');
unlike($pglog, qr/\Q$key\E/, 'the key itself is not in PostgreSQL\'s statement log');
my $access = Pgauth::slurp("$ng->{dir}/logs/rtmp-access.log");
like($access, qr/PUBLISH "live" "alice"/,
     'nginx-rtmp\'s access log shows the public name');
unlike($access, qr/\Q$key\E/, '... and not the key');
my $fp = substr(`printf %s '$key' | sha256sum`, 0, 8);
ok(grep({ /pgauth: allowed app="live" name="alice" addr="127\.0\.0\.1" fp=$fp session="" time=\d+ms via=lookup,/ } @ours),
   'the allowed line names app, public name, address, fingerprint, and the lookup it went live on');
ok(grep({ /pgauth: confirmed app="live" name="alice" fp=$fp session="\d+" time=\d+ms/ } @ours),
   '... the confirmed line the session recorded right after');

# key?args: the arguments are split off and handed to the query as $4
$pg->psql("CREATE TABLE public.seen_args (args text)");
$pg->psql("GRANT INSERT ON public.seen_args TO pgauth_nginx");
my $ng2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    app => 'pgauth_query "WITH a AS (INSERT INTO public.seen_args VALUES ($4))'
           . ' SELECT stream_name, session_id FROM pgauth.authorize($1, $2, $3, $4)";'));
$r = rtmpc($ng2->{rtmp_port}, 'live', name => "$key?token=abc&x=1");
is($r->{exit}, 0, 'key?args publishes');
is($pg->psql("SELECT args FROM public.seen_args"), 'token=abc&x=1',
   'the publish arguments reach the query as $4');
like($ng2->error_log, qr/pgauth: allowed app="live" name="alice" .* session="\d+" time=\d+ms,/m,
     'a query of one\'s own: no lookup first, live once the session is recorded');

# pgauth_lookup_first off: live once the session is recorded
my $ng5 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    app => 'pgauth_lookup_first off;'));
$r = rtmpc($ng5->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'pgauth_lookup_first off: publishes');
like($ng5->error_log, qr/pgauth: allowed app="live" name="alice" .* session="\d+" time=\d+ms,/m,
     '... live once the session is recorded');
unlike($ng5->error_log, qr/via=lookup/, '... never on the lookup');

# pgauth off: the module stays out of the way
my $ng3 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    pgauth => 'pgauth off;'));
$r = rtmpc($ng3->{rtmp_port}, 'live', name => 'anything');
is($r->{exit}, 0, 'with pgauth off any name publishes');

# pgauth_key_hash none: a server error quoting the key is logged without it
my $ng4 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    app => 'pgauth_key_hash none; pgauth_query "SELECT $1::integer::text, NULL";'));
my $raw = 'Secret-' . $key;
$r = rtmpc($ng4->{rtmp_port}, 'live', name => $raw);
is($r->{status}{code}, 'NetStream.Failed', 'a query failing on the raw key refuses');
my @err = grep { /pgauth: refused/ } split /\n/, $ng4->error_log;
like($err[0] // '', qr/invalid input syntax for type integer: "\*\*\*"/,
     '... the error is logged with the key replaced');
ok(!grep({ /pgauth:/ && /\Q$raw\E/ } split /\n/, $ng4->error_log),
   '... the key is in none of our lines');

for my $n ($ng, $ng2, $ng3, $ng4, $ng5) {
    $n->stop;
    is(join("\n", $n->bad_lines), '', 'no alert, crash or sanitizer report');
}

done_testing();
