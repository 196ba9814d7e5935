#!/usr/bin/perl
# PostgreSQL stalled (SIGSTOP): a pending publish is refused at the deadline
# while a stream that was already live keeps producing HLS segments and
# HTTP stays fast; after SIGCONT everything works again.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $timeout_ms = 2000;

my $pg = Pgauth::Pg->new;
my $live = $pg->create_key('live1');
my $key = $pg->create_key('alice');
my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    app => "pgauth_timeout ${timeout_ms}ms;"));
my $port = $ng->{rtmp_port};

my $ff = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$live", 20,
                        "$ng->{dir}/ffmpeg.log");
ok(wait_for(15, sub { -s "$ng->{hls}/live1.m3u8" }), 'a stream is live');

sub segments { scalar grep { /^live1-\d+\.ts$/ } $ng->hls_files }
sub newest { my ($n) = Pgauth::slurp("$ng->{hls}/live1.m3u8") =~ /live1-(\d+)\.ts\s*\z/; $n // -1 }

$pg->freeze;
my $t0 = time;
my $before = newest();

my $r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Failed', 'stalled: the publish is refused');
cmp_ok($r->{status}{ms}, '>=', $timeout_ms - 100, '... not before the deadline');
cmp_ok($r->{status}{ms}, '<=', $timeout_ms + 300, '... at the deadline');
ok($r->{closed}, '... and closed');

my $worst = 0;
for (1 .. 10) {
    my ($code, undef, $secs) = http_get($ng->{http_port}, '/hls/live1.m3u8');
    $worst = $secs if $secs > $worst;
    sleep 0.1;
}
cmp_ok($worst, '<', 0.5, 'stalled: HLS playlist still served promptly');

sleep 2;
cmp_ok(newest(), '>=', $before + 2,
       'stalled: the live stream kept producing segments ('
       . ($before) . ' -> ' . newest() . ')');

$pg->cont;

$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'resumed: publishes again');

waitpid $ff, 0;
is($? >> 8, 0, 'the live stream ran to its end through the stall')
    or diag Pgauth::slurp("$ng->{dir}/ffmpeg.log");

# The refused publish's query reached the frozen server, which ran it
# after SIGCONT, once nginx had closed that connection: that session stays
# open in the database (nothing is live for it).  Every publish that went
# live has its end recorded.
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions s"
                               . " WHERE ended_at IS NULL AND"
                               . " (stream_name = 'live1' OR id ="
                               . " (SELECT max(id) FROM pgauth.sessions))")
                    == 0 }),
   'every publish that went live has its end recorded');

cmp_ok($pg->nginx_backends, '<=', 2,
       'backends bounded by the pool size (2, the default)');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
