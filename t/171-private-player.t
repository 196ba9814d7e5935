#!/usr/bin/perl
# The player page (util/www/index.html) with a private stream, in a real
# browser (Debian's chromium, headless, playwright-core:
# t/player/private.mjs): with a viewer token in its address it plays the
# stream with hls.js, playlist and segments through pgauth_viewer; without
# one it says a viewer token is needed.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Pgauth;

need_browser();
need_tools('psql', 'ffmpeg');

my $pg = Pgauth::Pg->new;
my $ng = Pgauth::Nginx->new(pg => $pg, no_start => 1);
my $www = "$ng->{dir}/www";
mkdir $www or die;
system('cp', "$TOP/util/www/index.html",
       "$TOP/node_modules/hls.js/dist/hls.min.js", "$www/") == 0 or die;

# the page at /p/, its streams private under /p/hls/
$ng->write_conf(Pgauth::Nginx::default_conf(http => <<"CONF"));
        location /p/ {
            alias $www/;
            types {
                text/html html;
                application/javascript js;
            }
        }
        location /p/hls/ {
            pgauth_viewer on;
            alias %%HLS%%/;
            types {
                application/vnd.apple.mpegurl m3u8;
                video/mp2t ts;
            }
        }
        location = /p/pgauth_status { pgauth_status public; }
CONF
$ng->start;

my $key = $pg->create_key('alice');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key", 120,
                        "$ng->{dir}/logs/ffmpeg.log");
ok(wait_for(15, sub { $ng->last_segment('alice') >= 1 }), 'alice is live');
my $token = $pg->psql("SELECT pgauth.create_viewer_token('alice')");

my $out = `timeout 120 node $TOP/t/player/private.mjs http://127.0.0.1:$ng->{http_port}/p/index.html $ng->{dir} alice $token 2>&1`;
my %step = map { /^(\w+) (.*)$/ ? ($1 => $2) : () } split /\n/, $out;
ok(!$step{fail}, 'the browser went through') or diag $out;

my $playing = eval { decode_json($step{playing} // '') } || {};
cmp_ok($playing->{currentTime} // 0, '>', ($playing->{from} // 0) + 2,
       'with a token in its address the page plays the private stream');
like($playing->{url} // '', qr/^hls\/alice\.m3u8\?token=\x{2026}$/,
     '... and does not show the token');

my $refused = eval { decode_json($step{refused} // '') } || {};
is($refused->{text}, 'private stream: a viewer token is needed',
   'without one it says a viewer token is needed');
is_deeply($refused->{errors}, [], '... no script error');

like($ng->error_log, qr/pgauth: viewer allowed app="live" name="alice"/,
     'the database allowed the viewer');
is($pg->psql("SELECT count(*) FROM pgauth.viewer_sessions"), 1,
   '... once, for the whole play');

kill 'INT', $ff;
waitpid $ff, 0;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
