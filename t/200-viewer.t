#!/usr/bin/perl
# Private HLS (pgauth_viewer): a viewer token from PostgreSQL lets its
# holder watch one stream; the first request asks the database, every
# later playlist and segment request is checked in shared memory; the
# session reaches the segments as a cookie and as a parameter of the
# playlist's URIs; every refusal is the same 403; a revoke stops the
# viewer within a second; with the database down a viewer with a session
# keeps watching and a new one gets 503.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;
my $edge = free_port();
# the private location, and in front of it an edge cache (nginx's
# proxy_cache, as a CDN would be), caching whatever it may for 10 minutes
my $ng = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_limit_zone zone=viewers:1m failures=3 window=1m block=1m;',
    http => <<"EOF"));
        location /limited/ {
            pgauth_viewer on limit=viewers;
            alias %%HLS%%/;
        }
        # nothing here: the files come from another location, as from a
        # fallback storage
        location /origin/ {
            pgauth_viewer on;
            root %%DIR%%/empty;
            error_page 404 = \@storage;
        }
        # a redirect to another stream's file is checked for that stream
        location /jump/ {
            pgauth_viewer on;
            root %%DIR%%/empty;
            error_page 404 = /private/bob.m3u8;
        }
        location \@storage {
            rewrite ^/origin/(.*)\$ /\$1 break;
            root %%HLS%%;
        }
        location /private/ {
            pgauth_viewer on;
            access_log %%DIR%%/logs/access.log;
            alias %%HLS%%/;
            types {
                application/vnd.apple.mpegurl m3u8;
                video/mp2t ts;
            }
        }
    }

    proxy_cache_path %%DIR%%/tmp/edge keys_zone=edge:1m;

    server {
        listen 127.0.0.1:$edge;
        location / {
            proxy_pass http://127.0.0.1:%%HTTP_PORT%%;
            proxy_cache edge;
            proxy_cache_valid 200 403 10m;
            add_header X-Cache \$upstream_cache_status always;
        }
EOF
my $port = $ng->{http_port};

my $key = $pg->create_key('alice');
my $other_key = $pg->create_key('bob');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key", 120,
                        "$ng->{dir}/logs/ffmpeg-alice.log");
my $ff2 = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/$other_key",
                         120, "$ng->{dir}/logs/ffmpeg-bob.log");
ok(wait_for(20, sub { $ng->last_segment('alice') >= 1
                      && $ng->last_segment('bob') >= 0 }),
   'two streams publish HLS');

sub token {
    my ($name, @more) = @_;
    my $args = join '', map { ", $_" } @more;
    return $pg->psql("SELECT pgauth.create_viewer_token('$name'$args)");
}
sub token_id {
    my ($t) = @_;
    return $pg->psql("SELECT id FROM pgauth.viewer_tokens"
                     . " WHERE token_digest = sha256(convert_to('$t', 'UTF8'))");
}
sub viewer_sessions {
    return $pg->psql("SELECT count(*) FROM pgauth.viewer_sessions");
}

my $seg = 'alice-' . $ng->last_segment('alice') . '.ts';

# every refusal looks the same
my $good = token('alice');
my $bobs = token('bob');
my $expired = token('alice', "'live'", "'1 second'");
my $revoked = token('alice');
$pg->psql('SELECT pgauth.revoke_viewer_token(' . token_id($revoked) . ')');
my $foreign = token('alice', "'studio'");
sleep 1.2;

my %refused = (
    'no token' => '/private/alice.m3u8',
    'a wrong token' => '/private/alice.m3u8?token=0123456789abcdef0123456789abcdef01234567',
    "another stream's token" => "/private/alice.m3u8?token=$bobs",
    'an expired token' => "/private/alice.m3u8?token=$expired",
    'a revoked token' => "/private/alice.m3u8?token=$revoked",
    "another application's token" => "/private/alice.m3u8?token=$foreign",
    'a segment without a token' => "/private/$seg",
    'a stream that does not exist' => "/private/nobody.m3u8?token=$good",
    'a forged session' => "/private/$seg?pgauth=1-00000000000000000000000000000000",
    # a directory that would end the cookie's Path, with a good token
    'a directory with a ";"' => "/private/a%3BDomain=x/alice.m3u8?token=$good",
    'a directory with a line break' => "/private/a%0d%0aX:1/alice.m3u8?token=$good",
    # refused before the stream is known: the token still masked
    'not a stream\'s file' => "/private/alice.mp4?token=$good",
    # the argument's name in any case is the token, masked too
    'another stream\'s token as "Token="' => "/private/alice.m3u8?Token=$bobs",
);
my %bodies;
for my $why (sort keys %refused) {
    my $r = http_request($port, $refused{$why});
    is($r->{status}, 403, "$why: 403");
    ok(!$r->{headers}{'set-cookie'}, '... and no cookie');
    $bodies{$r->{body}}++;
}
is(scalar(keys %bodies), 1, 'every refusal reads the same: no hint whether the stream exists');
unlike($ng->error_log, qr/\Q$good\E|\Q$bobs\E|\Q$expired\E/, 'no token is in the error log');
like($ng->error_log, qr/request: "GET \/private\/alice\.m3u8\?token=\*{40} HTTP/,
     "... nginx's part of a line shows it masked");

# the token: the playlist, rewritten; the cookie
my $before = viewer_sessions();
my $r = http_request($port, "/private/alice.m3u8?token=$good");
is($r->{status}, 200, 'a valid token: the playlist');
my ($cookie) = @{$r->{headers}{'set-cookie'} || []};
like($cookie // '', qr{^pgauth_alice=\d+-[0-9a-f]{32}; Path=/private/; Max-Age=\d+; HttpOnly; SameSite=Lax$},
     '... with the session in a cookie for the directory');
my ($session) = ($cookie // '') =~ /^pgauth_alice=([^;]+)/;
unlike($cookie // '', qr/\Q$good\E/, '... which is not the token');
is(($r->{headers}{'cache-control'} || [])->[0], 'private, no-store', '... not for shared caches');
is((http_request($port, '/private/alice.m3u8')->{headers}{'cache-control'} || [])->[0],
   'private, no-store', 'a refusal is not for shared caches either');
my @uris = grep { !/^#/ && /\S/ } split /\r?\n/, $r->{body};
ok(@uris && !grep({ !/^alice-\d+\.ts\?pgauth=\Q$session\E$/ } @uris),
   'every segment URI of the playlist carries the session (' . scalar(@uris) . ')')
    or diag $r->{body};
is(viewer_sessions(), $before + 1, 'the database opened one viewer session');
like($ng->error_log, qr/pgauth: viewer allowed app="live" name="alice" fp=[0-9a-f]{8} session="\d+"/,
     'the allowance is logged with the fingerprint');

# the session, either way, for every segment and playlist
$r = http_request($port, "/private/$uris[0]");
is($r->{status}, 200, 'a segment with the session parameter');
is(($r->{headers}{'cache-control'} || [])->[0], 'private', '... private');
ok(length($r->{body}) > 1000, '... the segment itself');
$r = http_request($port, "/private/$seg", [ Cookie => "pgauth_alice=$session" ]);
is($r->{status}, 200, 'a segment with the cookie only');
$r = http_request($port, "/private/alice.m3u8", [ Cookie => "other=1; pgauth_alice=$session" ]);
is($r->{status}, 200, 'the playlist with the cookie only');
$r = http_request($port, "/private/bob.m3u8", [ Cookie => "pgauth_bob=$session" ]);
is($r->{status}, 403, "alice's session does not open bob's stream");
(my $forged = $session) =~ s/.$/ $& eq '0' ? '1' : '0' /e;
$r = http_request($port, "/private/$seg?pgauth=$forged");
is($r->{status}, 403, 'a session with a wrong secret: 403');

# a session is its client address's: copied elsewhere, the token is needed
is(http_request({ from => '127.0.0.2' }, $port, "/private/$seg?pgauth=$session")->{status},
   403, 'the session from another address: 403');
is(http_request({ from => '127.0.0.2' }, $port, "/private/$seg",
                [ Cookie => "pgauth_alice=$session" ])->{status},
   403, '... as a cookie too');
like($ng->error_log, qr/pgauth: viewer session of another address name="alice"/,
     '... logged');

# served by another location after an internal redirect: still private,
# and the playlist still carries the session
$r = http_request($port, "/origin/alice.m3u8?token=$good");
is($r->{status}, 200, 'a playlist served after an internal redirect (error_page)');
is(($r->{headers}{'cache-control'} || [])->[0], 'private, no-store', '... not for shared caches');
my ($o1) = grep { !/^#/ && /\S/ } split /\r?\n/, $r->{body};
like($o1 // '', qr/^alice-\d+\.ts\?pgauth=\Q$session\E$/, '... its URIs carry the session');
$r = http_request($port, "/origin/$o1");
is($r->{status}, 200, '... a segment of it');
is(($r->{headers}{'cache-control'} || [])->[0], 'private', '... private');
is(http_request($port, '/origin/alice.m3u8')->{status}, 403, '... and without a token: 403');
is(http_request($port, "/jump/alice.m3u8?token=$good")->{status}, 403,
   "alice's token, redirected to bob's playlist: checked for bob, 403");

# zero queries after the first
for (1 .. 50) {
    http_request($port, "/private/alice.m3u8?token=$good");
    http_request($port, "/private/$seg?pgauth=$session");
}
is(viewer_sessions(), $before + 1, '100 more playlist and segment requests: no new viewer session');

# behind the edge cache: a viewer's answers are not served to another
my $e1 = http_request($edge, "/private/alice.m3u8?token=$good");
is($e1->{status}, 200, 'through the edge cache: the viewer gets the playlist');
my ($ec) = ((($e1->{headers}{'set-cookie'} || [])->[0]) // '') =~ /^(pgauth_alice=[^;]+)/;
my ($eu) = grep { !/^#/ && /\S/ } split /\r?\n/, $e1->{body};
my $e2 = http_request($edge, "/private/$eu");
is($e2->{status}, 200, '... and a segment');
is(http_request($edge, "/private/$eu")->{headers}{'x-cache'}[0], 'MISS',
   '... which the edge does not keep (private)');
my ($bare) = $eu =~ /^([^?]+)/;
is(http_request($edge, "/private/$bare")->{status}, 403,
   'another viewer, without a token, through the edge: 403, not the cached segment');
is(http_request($edge, "/private/alice.m3u8")->{status}, 403,
   '... nor the playlist');
is(http_request($edge, "/private/alice.m3u8", [ Cookie => $ec ])->{status}, 200,
   'the viewer\'s cookie through the edge: the origin checks it');

# a token for one address at a time: another address is refused
my $one = token('alice', "'live'", "'1 day'", 'NULL', 1);
is(http_request($port, "/private/alice.m3u8?token=$one")->{status}, 200,
   'max_viewers 1: the first address watches');
is(http_request({ from => '127.0.0.2' }, $port, "/private/alice.m3u8?token=$one")->{status},
   403, '... another address is refused');
is(http_request($port, "/private/alice.m3u8?token=$one")->{status}, 200,
   '... the first goes on');

# counted: viewers by stream, and the decisions the database was asked for
my $m = http_request($port, '/pgauth_status')->{body};
# two sessions watch alice: $good's and $one's (the edge's requests came
# from the same address with $good: the same session)
like($m, qr/^pgauth_viewers\{app="live",name="alice"\} 2$/m,
     'pgauth_viewers: two viewers of alice');
unlike($m, qr/^pgauth_viewers\{app="live",name="bob"\}/m, '... none of bob');
like($m, qr/^pgauth_decisions_total\{outcome="viewer_allowed",via="database"\} 2$/m,
     'pgauth_decisions_total: two viewers allowed by the database');
like($m, qr/^pgauth_decisions_total\{outcome="viewer_denied",via="database"\} 8$/m,
     '... eight refused by it: seven tokens (one as "Token="), one address too'
     . ' many (the refusals without a token, or before one is looked at, asked'
     . ' nothing)');
my $j = http_request($port, '/pgauth_status?format=json')->{body};
like($j, qr/\{"name":"alice","app":"live","client":"127\.0\.0\.1","since":\d+,"viewers":2\}/,
     'the JSON status: alice has two viewers');
like($j, qr/\{"name":"bob","app":"live","client":"127\.0\.0\.1","since":\d+,"viewers":0\}/,
     '... bob none');

# wrong tokens count against the address, as wrong keys do: the fourth
# attempt is refused without asking, even with a good token
my $sessions = viewer_sessions();
for my $i (1 .. 3) {
    is(http_request({ from => '127.0.0.3' }, $port,
                    "/limited/alice.m3u8?token=0123456789abcdef0123456789abcdef0123456$i")->{status},
       403, "limit: wrong token $i from 127.0.0.3: 403");
}
like($ng->error_log, qr/\[warn\].*pgauth: blocked addr="127\.0\.0\.3" for 60s after 3 failed viewer tokens/,
     '... the address is blocked, as fail2ban\'s filter reads it');
my $t4 = token('alice');
is(http_request({ from => '127.0.0.3' }, $port, "/limited/alice.m3u8?token=$t4")->{status},
   403, '... then even a good token from it: 403');
is(viewer_sessions(), $sessions, '... without asking the database');
is(http_request({ from => '127.0.0.4' }, $port, "/limited/alice.m3u8?token=$t4")->{status},
   200, '... another address is not blocked');

# a real player
my $out = `ffmpeg -hide_banner -nostats -loglevel info -t 4 -i 'http://127.0.0.1:$port/private/alice.m3u8?token=$good' -f null - 2>&1`;
is($?, 0, 'ffmpeg reads the private stream with a token') or diag $out;
like($out, qr/Opening 'http:\/\/127\.0\.0\.1:\d+\/private\/alice-\d+\.ts\?pgauth=/,
     '... and its segments with the session');
like($out, qr/frame=\s*\d{2,}/, '... decoding frames');

# revoked while watching: refused within a second
my $t0 = time;
$pg->psql('SELECT pgauth.revoke_viewer_token(' . token_id($good) . ')');
my $gone = wait_for(2, sub {
    http_request($port, "/private/$seg?pgauth=$session")->{status} == 403 });
my $ms = (time - $t0) * 1000;
ok($gone && $ms < 1000, sprintf('revoked while watching: refused %.0f ms after the revoke', $ms));
diag sprintf('revoke to refusal: %.0f ms', $ms);
is(http_request($port, "/private/alice.m3u8?token=$good")->{status}, 403,
   '... and the token opens nothing again');
like($ng->error_log, qr/pgauth: viewer session "\d+" ended, reason="revoked"/, '... logged');

# a notification alone ends nothing
my $t2 = token('alice');
$r = http_request($port, "/private/alice.m3u8?token=$t2");
my ($c2) = ((($r->{headers}{'set-cookie'} || [])->[0]) // '') =~ /^(pgauth_alice=[^;]+)/;
my ($s2) = ($c2 // '') =~ /=(\d+)-/;
ok($s2, 'another viewer has a session');
$pg->psql("NOTIFY pgauth, 'vend $s2 revoked'");
sleep 0.5;
is(http_request($port, "/private/$seg", [ Cookie => $c2 ])->{status}, 200,
   'a forged "vend" notification: the database says live, the viewer goes on');

# a reload keeps the viewers' sessions: no viewer asks again
my $before_reload = viewer_sessions();
$ng->reload;
sleep 1.5;
is(http_request($port, "/private/$seg", [ Cookie => $c2 ])->{status}, 200,
   'after a reload the viewer goes on');
is(viewer_sessions(), $before_reload, '... without asking the database again');

# the database down: a viewer with a session keeps watching, a new one 503
my $t3 = token('alice');
$pg->stop('fast');
is(http_request($port, "/private/$seg", [ Cookie => $c2 ])->{status}, 200,
   'database down: a viewer with a session keeps watching');
$r = http_request($port, "/private/alice.m3u8?token=$t3");
is($r->{status}, 503, '... a new viewer gets 503');
cmp_ok($r->{seconds}, '<', 4, sprintf('... within the timeout (%.1f s)', $r->{seconds}));
is(http_request($port, '/ping')->{status}, 200, '... and the rest of HTTP carries on');
$pg->start;

# a session runs out: a playlist asks for its successor in time (half its
# life, or a minute, before), so a player that fetches segments a while
# after their playlist is never refused, whether it keeps the token in the
# playlist's address or only the cookie (a variant playlist's address
# carries no token)
$pg->psql("UPDATE pgauth.settings SET viewer_session = '6 seconds'");
my $t5 = token('alice');
ok(wait_for(10, sub {
       http_request($port, "/private/alice.m3u8?token=$t5")->{status} == 200 }),
   'the database is back: a new viewer watches');
for my $how ('token', 'cookie') {
    my ($refused, %sessions, @pending) = (0);
    my $jar = '';
    my $end = time + 14;
    while (time < $end) {
        my $p = $how eq 'token'
              ? http_request($port, "/private/alice.m3u8?token=$t5")
              : http_request($port, '/private/alice.m3u8',
                             $jar ? ([ Cookie => $jar ]) : ());
        if ($how eq 'cookie' && !$jar) {
            $p = http_request($port, "/private/alice.m3u8?token=$t5");
        }
        my ($set) = ((($p->{headers}{'set-cookie'} || [])->[0]) // '') =~ /^(pgauth_alice=[^;]+)/;
        $jar = $set if $set;
        $refused++ if $p->{status} != 200;
        for my $u (@pending) {
            $refused++ if http_request($port, "/private/$u")->{status} != 200;
        }
        @pending = grep { !/^#/ && /\S/ } split /\r?\n/, $p->{body};
        $sessions{$1}++ for map { /pgauth=(\d+)-/ ? $1 : () } @pending;
        sleep 1.5;
    }
    is($refused, 0, "6 s viewer sessions, 14 s of playlists (with the $how)"
       . ' and their segments fetched 1.5 s later: none refused');
    my $n = scalar keys %sessions;
    ok($n >= 3 && $n <= 6, "... each session followed by its successor in turn ($n)");
}

# a renewal whose answer is not a 2xx (a playlist not there: the successor
# it opened never reaches the player): the next playlist renews again
$pg->psql("UPDATE pgauth.settings SET viewer_session = '12 seconds'");
$r = http_request($port, "/private/alice.m3u8?token=$t5");
my ($jar) = ((($r->{headers}{'set-cookie'} || [])->[0]) // '') =~ /^(pgauth_alice=[^;]+)/;
sleep 6.5;
is(http_request($port, '/private/sub/alice.m3u8', [ Cookie => $jar ])->{status}, 404,
   'past the renewal point, a playlist that is not there: 404');
sleep 2.5;
$r = http_request($port, '/private/alice.m3u8', [ Cookie => $jar ]);
my ($next) = ((($r->{headers}{'set-cookie'} || [])->[0]) // '') =~ /^(pgauth_alice=[^;]+)/;
ok($r->{status} == 200 && $next && $next ne $jar,
   '... the next playlist is renewed again, and hands its successor out');
sleep 3.5;
is(http_request($port, '/private/alice.m3u8', [ Cookie => $next // '' ])->{status}, 200,
   '... which holds after the first session lapsed');
$pg->psql("UPDATE pgauth.settings SET viewer_session = '5 minutes'");

unlike(Pgauth::slurp("$ng->{dir}/logs/access.log"), qr/token=[0-9a-f]/,
       'no token is in the access log');

kill 'INT', $ff, $ff2;
waitpid $_, 0 for $ff, $ff2;
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
