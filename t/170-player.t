#!/usr/bin/perl
# The player page (util/www/index.html) in a real browser: Debian's chromium,
# headless, driven by playwright-core (t/player/player.mjs).  ffmpeg
# publishes a test pattern as alice, then as bob; the page lists both from
# pgauth_status and plays the newest, bob; a click on alice plays her with
# hls.js; when her encoder stops the page shows offline (and stays on her),
# and plays again by itself when she comes back.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use IPC::Open2;
use Pgauth;

# make test installs chromium (util/deps.sh); only where apt cannot is the
# browser test skipped
need_browser();
need_tools('psql', 'ffmpeg');

my $pg = Pgauth::Pg->new;
my $www;
my $ng = Pgauth::Nginx->new(pg => $pg, no_start => 1);
$www = "$ng->{dir}/www";
mkdir $www or die;
system('cp', "$TOP/util/www/index.html",
       "$TOP/node_modules/hls.js/dist/hls.min.js", "$www/") == 0 or die;
$ng->write_conf(Pgauth::Nginx::default_conf(http => <<"EOF"));
        location / {
            root $www;
            types {
                text/html html;
                application/javascript js;
            }
        }
EOF
$ng->start;

my $key = $pg->create_key('alice');
my $url = "rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key";
my $ff = ffmpeg_publish($url, 120, "$ng->{dir}/logs/ffmpeg1.log");
ok(wait_for(15, sub { -s "$ng->{hls}/alice.m3u8" }), 'alice is live');
sleep 1.1;
my $bob = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/"
                         . $pg->create_key('bob'), 120,
                         "$ng->{dir}/logs/ffmpeg-bob.log");
ok(wait_for(15, sub { -s "$ng->{hls}/bob.m3u8" }), 'bob is live');

# the browser; if it fails, writing to it must not kill the test before
# its END block stops nginx and PostgreSQL
local $SIG{PIPE} = 'IGNORE';
my ($out, $in);
my $node = open2($out, $in, 'node', "$TOP/t/player/player.mjs",
                 "http://127.0.0.1:$ng->{http_port}/", $ng->{dir},
                 'alice', 'bob');
$in->autoflush(1);

# the next line of player.mjs, as (step, data)
sub step {
    my ($want) = @_;
    my $line = eval {
        local $SIG{ALRM} = sub { die "no answer from the browser in 90 s\n" };
        alarm 90;
        my $l = <$out>;
        alarm 0;
        $l;
    };
    alarm 0;
    if (!defined $line) {
        fail("$want: " . ($@ || "the browser driver exited\n"));
        return ('', {});
    }
    chomp $line;
    my ($step, $rest) = split / /, $line, 2;
    if ($step eq 'fail') {
        fail("$want: $rest");
        diag("screenshot in $ng->{dir}, error log:\n" . $ng->error_log)
            if $ENV{PGAUTH_VERBOSE};
        return ('fail', {});
    }
    my $data = eval { decode_json($rest) } || {};
    is($step, $want, "the browser: $want") or diag $line;
    return ($step, $data);
}

my @frames;

sub not_blank {
    my ($f, $what) = @_;
    push @frames, "$f->{width}x$f->{height} luma sd $f->{stddev}, "
                  . "$f->{colours} colours";
    ok($f->{width} == 320 && $f->{height} == 240
       && $f->{stddev} > 20 && $f->{colours} >= 8,
       "$what: the frame is the test pattern, not blank")
        or diag explain $f;
}

my %ms;
my ($s, $d) = step('listed');
$ms{listed} = $d->{ms};
if ($s eq 'listed') {
    is_deeply([sort @{$d->{names}}], ['alice', 'bob'],
              'the list shows alice and bob') or diag explain $d;
    like($d->{list}[0], qr/live, live for \d+ s$/, '... with app and time');
    is($d->{hash}, '#bob', 'the page chose the newest stream by itself');
    ok(!(grep { /\Q$key\E/ } @{$d->{list}}), '... and never the key');
}

($s, $d) = step('playing');
$ms{playing} = $d->{ms};
if ($s eq 'playing') {
    cmp_ok($d->{to} - $d->{from}, '>', 2, 'currentTime advanced by > 2 s')
        or diag explain $d;
    is($d->{hash}, '#alice', 'the click chose alice');
    not_blank($d->{frame}, 'playing');
}

($s) = step('stopped?');
kill 'TERM', $ff;
waitpid $ff, 0;
print $in "stopped\n";

($s, $d) = step('offline');
$ms{offline} = $d->{ms};
if ($s eq 'offline') {
    is($d->{state}, 'offline', 'the page says offline');
    is_deeply($d->{names}, ['bob'], '... alice left the list, bob is there');
    is($d->{hash}, '#alice', '... and it stays on alice');
}

($s) = step('started?');
$ff = ffmpeg_publish($url, 120, "$ng->{dir}/logs/ffmpeg2.log");
print $in "started\n";

($s, $d) = step('back');
$ms{back} = $d->{ms};
if ($s eq 'back') {
    cmp_ok($d->{to} - $d->{from}, '>', 2,
           'back by itself: currentTime advanced by > 2 s again')
        or diag explain $d;
    not_blank($d->{frame}, 'back');
    is_deeply($d->{errors}, [], 'no error in the page');
}

# make test prints it
diag(sprintf 'player page: listed %s ms after loading; %s ms from the click '
     . 'to 2 s played; offline %s ms after the encoder stopped; 2 s played '
     . 'again %s ms after it restarted',
     map { $_ // '-' } @ms{qw(listed playing offline back)});
diag('frames: ' . join('; ', @frames));

close $in;
waitpid $node, 0;
is($? >> 8, 0, 'the browser driver finished');

kill 'TERM', $ff, $bob;
waitpid $_, 0 for $ff, $bob;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
