#!/usr/bin/perl
# Two nginx nodes on one database serve one private stream (n2 reads n1's
# HLS directory, as shared storage): a viewer with a session on each node,
# one token; a revoke refuses both within a second, each node told by its
# own LISTEN connection.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg');

my $pg = Pgauth::Pg->new;
my $private = <<'EOF2';
        location /private/ {
            pgauth_viewer on;
            alias HLSDIR/;
        }
EOF2

my $n1 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_node n1;',
    http => $private =~ s/HLSDIR/%%HLS%%/r));
my $n2 = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_node n2;',
    http => $private =~ s/HLSDIR/$n1->{hls}/r));

my $key = $pg->create_key('alice');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$n1->{rtmp_port}/live/$key", 60,
                        "$n1->{dir}/logs/ffmpeg.log");
ok(wait_for(20, sub { $n1->last_segment('alice') >= 1 }), 'alice publishes on n1');

my $token = $pg->psql("SELECT pgauth.create_viewer_token('alice')");
my $seg = 'alice-' . $n1->last_segment('alice') . '.ts';

my %session;
for my $n ($n1, $n2) {
    my $name = $n == $n1 ? 'n1' : 'n2';
    my $r = http_request($n->{http_port}, "/private/alice.m3u8?token=$token");
    is($r->{status}, 200, "a viewer on $name: the playlist");
    ($session{$name}) = ((($r->{headers}{'set-cookie'} || [])->[0]) // '')
        =~ /^pgauth_alice=([^;]+)/;
    is(http_request($n->{http_port}, "/private/$seg?pgauth=$session{$name}")->{status},
       200, '... and a segment with its session');
}
isnt($session{n1}, $session{n2}, 'each node opened a session of its own');
is($pg->psql("SELECT string_agg(node, ',' ORDER BY node) FROM pgauth.viewer_sessions"),
   'n1,n2', '... recorded with its node');

my $t0 = time;
$pg->psql("SELECT pgauth.revoke_viewer_token(id) FROM pgauth.viewer_tokens");
my %ms;
while (keys %ms < 2 && time - $t0 < 3) {
    for my $n ($n1, $n2) {
        my $name = $n == $n1 ? 'n1' : 'n2';
        next if $ms{$name};
        $ms{$name} = (time - $t0) * 1000
            if http_request($n->{http_port}, "/private/$seg?pgauth=$session{$name}")
                   ->{status} == 403;
    }
    sleep 0.01;
}
for my $name ('n1', 'n2') {
    ok(defined $ms{$name} && $ms{$name} < 1000,
       sprintf("revoked: the viewer on $name is refused %.0f ms later", $ms{$name} // -1));
}
diag sprintf('revoke to refusal, two nodes: n1 %.0f ms, n2 %.0f ms', $ms{n1} // -1, $ms{n2} // -1);
for my $n ($n1, $n2) {
    like($n->error_log, qr/pgauth: viewer session "\d+" ended, reason="revoked"/,
         '... each node ended its own session');
}

kill 'INT', $ff;
waitpid $ff, 0;
$n1->stop;
$n2->stop;
is(join("\n", $n1->bad_lines, $n2->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
