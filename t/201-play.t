#!/usr/bin/perl
# Private RTMP play (pgauth_play): ffmpeg plays a stream with a viewer
# token and is refused without one or with a wrong one; a revoke while it
# plays closes it within a second; the play's end is recorded; no token is
# in the logs.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    app => 'pgauth_play on;'));
my $port = $ng->{rtmp_port};

my $key = $pg->create_key('alice');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$key", 120,
                        "$ng->{dir}/logs/ffmpeg-publish.log");
ok(wait_for(20, sub { $ng->last_segment('alice') >= 0 }), 'alice publishes');

sub token {
    return $pg->psql("SELECT pgauth.create_viewer_token('$_[0]')");
}

# ffmpeg reading rtmp://.../live/NAME[?token=T] for secs; its output
sub play {
    my ($name, $secs) = @_;
    my $out = `ffmpeg -hide_banner -nostats -loglevel info -rw_timeout 5000000 -i 'rtmp://127.0.0.1:$port/live/$name' -t $secs -f null - 2>&1`;
    return ($? >> 8, $out);
}

my $good = token('alice');
my ($rc, $out) = play("alice?token=$good", 3);
is($rc, 0, 'ffmpeg plays alice with a viewer token') or diag $out;
like($out, qr/frame=\s*\d{2,}/, '... decoding frames');
like($ng->error_log, qr/pgauth: viewer allowed app="live" name="alice" fp=[0-9a-f]{8} session="\d+" rtmp/,
     '... allowed by the database');
ok(wait_for(5, sub {
       $pg->psql("SELECT count(*) FROM pgauth.viewer_sessions WHERE protocol = 'rtmp'"
                 . " AND ended_at IS NOT NULL") == 1 }),
   '... and its end is recorded');

($rc, $out) = play('alice', 2);
isnt($rc, 0, 'without a token: refused');
like($ng->error_log, qr/pgauth: viewer refused app="live" name="alice" addr="127\.0\.0\.1" reason="no token"/,
     '... "no token"');
($rc, $out) = play('alice?token=0123456789abcdef0123456789abcdef01234567', 2);
isnt($rc, 0, 'a wrong token: refused');
like($ng->error_log, qr/reason="no matching token"/, '... "no matching token"');
($rc, $out) = play('bob?token=' . $good, 2);
isnt($rc, 0, "another stream's name: refused");

# revoked while playing
my $t2 = token('alice');
my $pid = open(my $fh, '-|') // die;
if (!$pid) {
    open STDERR, '>&', \*STDOUT;
    exec 'ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'info',
         '-i', "rtmp://127.0.0.1:$port/live/alice?token=$t2",
         '-t', '30', '-f', 'null', '-';
}
my $n = () = $ng->error_log =~ /viewer allowed .* rtmp/g;
ok(wait_for(10, sub { (() = $ng->error_log =~ /viewer allowed .* rtmp/g) > $n }),
   'a second player plays');
sleep 1;
my $t0 = time;
$pg->psql("SELECT pgauth.revoke_viewer_token(id) FROM pgauth.viewer_tokens"
          . " WHERE token_digest = sha256(convert_to('$t2', 'UTF8'))");
ok(wait_for(3, sub { $ng->error_log =~ /pgauth: viewer ended app="live" name="alice" .*reason="revoked"/ }),
   'revoked while playing: the play is ended');
my $ms = (time - $t0) * 1000;
cmp_ok($ms, '<', 1000, sprintf('... %.0f ms after the revoke', $ms));
diag sprintf('revoke to the RTMP play ended: %.0f ms', $ms);
ok(wait_for(5, sub { waitpid($pid, POSIX::WNOHANG()) == $pid }), '... and ffmpeg stops');
my $ffout = join '', <$fh>;
close $fh;
is($pg->psql("SELECT end_reason FROM pgauth.viewer_sessions WHERE protocol = 'rtmp'"
             . " ORDER BY id DESC LIMIT 1"), 'revoked', '... recorded as revoked');

# a token that expires while playing, later than the longest timer nginx
# is given (3 s in the sanitizer build): the rest is timed when it runs out
my $t3 = $pg->psql("SELECT pgauth.create_viewer_token('alice', 'live',"
                   . " '4.5 seconds')");
$t0 = time;
($rc, $out) = play("alice?token=$t3", 30);
my $played = time - $t0;
like($ng->error_log, qr/pgauth: viewer ended app="live" name="alice" .*reason="expired"/,
     'a token expiring while playing ends the play');
ok($played >= 4.2 && $played <= 6.5,
   sprintf('... when it expires, 4.5 s after it was made (%.2f s)', $played));

# nginx-rtmp itself logs a play's arguments at info, before any module
# sees them (as it logs a publish's key): only ours are checked
unlike(join("\n", grep { /pgauth:/ } split /\n/, $ng->error_log),
       qr/\Q$good\E|\Q$t2\E/, 'no token is in our lines of the error log');
unlike(join("\n", grep { !/\[info\]/ } split /\n/, $ng->error_log),
       qr/\Q$good\E|\Q$t2\E/, '... nor anywhere at notice and above');

# a worker killed while its viewer plays: the play's viewer session ends
# when the node starts again, and no longer holds a capped token's place
my $capped = $pg->psql("SELECT pgauth.create_viewer_token('alice', 'live',"
                       . " '1 day', 'one place', 1)");
sub other_address {
    return $pg->psql("SELECT count(*) FROM pgauth.authorize_viewer("
                     . "sha256(convert_to('$capped', 'UTF8')), 'live', 'alice',"
                     . " '192.0.2.7', 'hls')");
}
$pid = fork // die;
if (!$pid) {
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    exec 'ffmpeg', '-i', "rtmp://127.0.0.1:$port/live/alice?token=$capped",
         '-t', '30', '-f', 'null', '-';
}
$n = () = $ng->error_log =~ /viewer allowed .* rtmp/g;
ok(wait_for(10, sub { (() = $ng->error_log =~ /viewer allowed .* rtmp/g) > $n }),
   'a capped token (one address) plays');
is(other_address(), 0, '... and holds its place against another address');
my $conf = $ng->{conf};
kill 'KILL', $ng->all_pids;
$ng->{running} = 0;
kill 'KILL', $ff, $pid;
waitpid $ff, 0;
waitpid $pid, 0;
is($pg->psql("SELECT count(*) FROM pgauth.viewer_sessions WHERE protocol = 'rtmp'"
             . " AND ended_at IS NULL"), 1,
   'nginx killed with -9: the play is left open in the database');
$ng = Pgauth::Nginx->new(pg => $pg, conf => $conf);
ok(wait_for(5, sub {
       $pg->psql("SELECT string_agg(coalesce(v.end_reason, 'open'), ',')"
                 . " FROM pgauth.viewer_sessions v"
                 . " JOIN pgauth.viewer_tokens t ON t.id = v.token_id"
                 . " WHERE v.protocol = 'rtmp' AND t.comment = 'one place'")
       eq 'worker gone' }),
   'restarted: the gone worker\'s play ends as "worker gone"');
is(other_address(), 1, '... and another address may watch with the capped token');

# a node that never comes back: its plays end with its workers' sessions,
# by the next heartbeat of any worker (as "node lost")
$pg->psql("INSERT INTO pgauth.workers (node, pid, heartbeat, seen_at)"
          . " VALUES ('lost', 4242, '1 second', now() - interval '1 hour')");
$pg->psql("INSERT INTO pgauth.viewer_sessions (token_id, stream_name, app,"
          . " protocol, node, worker_pid, until)"
          . " VALUES (NULL, 'alice', 'live', 'rtmp', 'lost', 4242, 'infinity')");
ok(wait_for(5, sub {
       $pg->psql("SELECT end_reason FROM pgauth.viewer_sessions WHERE node = 'lost'")
       eq 'node lost' }),
   'a lost node\'s play ends as "node lost"');
is($pg->psql("SELECT count(*) FROM pgauth.workers WHERE node = 'lost'"), 0,
   '... and the node is forgotten');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
