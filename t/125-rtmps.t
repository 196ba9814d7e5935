#!/usr/bin/perl
# RTMPS for OBS: nginx's stream module (Debian's libnginx-mod-stream)
# terminates TLS and passes the connection on to an rtmp listener with
# proxy_protocol.  ffmpeg publishes over rtmps:// with a good key and is
# refused with a wrong one; the log, the session row ($3) and the limiter
# see the client's address from the PROXY header (127.0.0.1), never the
# front end's (it connects from 127.0.0.3).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

my $STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so';

need_tools('psql', 'ffmpeg', 'openssl', $RTMPC);
plan skip_all => 'a static nginx build: its stream module is not known'
    if $ENV{PGAUTH_STATIC};
plan skip_all => "$STREAM not found (libnginx-mod-stream)" unless -f $STREAM;

my $pg = Pgauth::Pg->new;
my $dir = Pgauth::tmpdir();

system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
       . " -nodes -keyout $dir/key.pem -out $dir/cert.pem -days 2"
       . " -subj /CN=localhost >$dir/openssl.log 2>&1") == 0
    or die "openssl: " . Pgauth::slurp("$dir/openssl.log");

my $tls_port = Pgauth::free_port();
my $pp_port = Pgauth::free_port();

my $conf = Pgauth::Nginx::default_conf(
    main => "load_module $STREAM;\n" . <<"EOF",
stream {
    server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        proxy_pass 127.0.0.1:$pp_port;
        proxy_protocol on;
        proxy_bind 127.0.0.3;
    }
}
EOF
    rtmp => <<"EOF",
    pgauth_limit_zone zone=l:1m failures=2 window=1m block=1m;

    server {
        listen 127.0.0.1:$pp_port proxy_protocol;

        application live {
            live on;
            pgauth on;
            pgauth_limit zone=l;
        }
    }
EOF
    app => 'pgauth_limit zone=l;');
my $ng = Pgauth::Nginx->new(pg => $pg, conf => $conf);

my $url = "rtmps://127.0.0.1:$tls_port/live";

sub ffmpeg_run {
    my ($key, $secs) = @_;
    my $log = "$dir/ffmpeg-" . time . '.log';
    my $t0 = time;
    my $pid = ffmpeg_publish("$url/$key", $secs, $log);
    waitpid $pid, 0;
    return ($? >> 8, Pgauth::slurp($log) // '', time - $t0);
}

my $key = $pg->create_key('cam');
my $pid = ffmpeg_publish("$url/$key", 4, "$dir/good.log");
ok(Pgauth::wait_for(10, sub { $ng->error_log =~ /pgauth: allowed app="live" name="cam"/ }),
   'ffmpeg publishes over rtmps:// with a good key');
like($ng->error_log, qr/pgauth: allowed app="live" name="cam" addr="127\.0\.0\.1" /,
     '... logged with the client\'s address from the PROXY header');
is($pg->psql("SELECT client_addr FROM pgauth.sessions WHERE stream_name = 'cam'"),
   '127.0.0.1', '... and recorded with it ($3)');
waitpid $pid, 0;
is($? >> 8, 0, '... ffmpeg ran to its end') or diag Pgauth::slurp("$dir/good.log");

# wrong keys over rtmps: refused, and counted against the client's address
for my $i (1, 2) {
    my ($rc, $out, $secs) = ffmpeg_run("wrong$i", 2);
    isnt($rc, 0, "wrong key $i over rtmps://: ffmpeg fails");
    cmp_ok($secs, '<', 5, "... at once ($secs s)");
}
like($ng->error_log, qr/pgauth: refused app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8} reason="[^"]+"/,
     'the refusals are logged with the client\'s address');
like($ng->error_log, qr/pgauth: blocked addr="127\.0\.0\.1" for 60s after 2 failed/,
     'after two, the limiter blocks the client\'s address');

my ($rc) = ffmpeg_run($key, 2);
isnt($rc, 0, 'the blocked client is refused over rtmps:// even with a good key');
like($ng->error_log, qr/pgauth: refused app="live" addr="127\.0\.0\.1" fp=[0-9a-f]{8} reason="address blocked"/,
     '... as blocked');

# nginx-rtmp's own "client connected" line comes before the PROXY header
# is read; after it, every line has the client's address
my @ours = grep { /pgauth:/ } split /\n/, $ng->error_log;
is(join("\n", grep { /127\.0\.0\.3/ } @ours), '',
   'the front end\'s address is in none of our lines, nor their context');
cmp_ok(scalar(grep { /client: 127\.0\.0\.1, server: 127\.0\.0\.1:$pp_port/ } @ours),
       '>=', 5, '... which say "client: 127.0.0.1"');

# the front end's own address was never counted: straight to the plain
# listener from it, the good key goes live
my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key, from => '127.0.0.3');
is($r->{status}{code}, 'NetStream.Publish.Start',
   'a client at the front end\'s address is not blocked');

like($ng->error_log, qr/pgauth: allowed app="live" name="cam" addr="127\.0\.0\.3" /,
     '... and is logged at its own address');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing;
