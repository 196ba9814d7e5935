#!/usr/bin/perl
# docker/: no Docker engine here, so what the image runs is run directly:
# docker/nginx.conf as entrypoint.sh fills it in (paths and ports moved to
# the test's folder), and docker/20-nginx-role.sh against a fresh database
# with the schema loaded as the postgres image's init does.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Pgauth;

need_tools('psql', 'ffmpeg', $RTMPC);

my $pg = Pgauth::Pg->new;

# the init script of the postgres container
my $out = `POSTGRES_USER=postgres PGAUTH_NGINX_PASSWORD="it's secret" PGHOST=127.0.0.1 PGPORT=$pg->{port} sh $TOP/docker/20-nginx-role.sh 2>&1`;
is($?, 0, '20-nginx-role.sh runs') or diag $out;
my ($key) = $out =~ /demo key for stream 'demo': ([0-9a-f]{40})$/m;
ok($key, 'it prints a demo key');
is($pg->psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'pgauth_nginx'"), 't',
   'nginx\'s role may log in');
is($pg->psql("SELECT rolpassword IS NOT NULL FROM pg_authid "
             . "WHERE rolname = 'pgauth_nginx'"), 't',
   '... with the password, quote and all');

# nginx.conf as the entrypoint writes it
my $dsn = $pg->dsn . ' password=secret';
my $conf = Pgauth::slurp("$TOP/docker/nginx.conf");
like($conf, qr/\@PGAUTH_DSN\@/, 'the template has the DSN placeholder');
(my $filled = $conf) =~ s/\@PGAUTH_DSN\@/$dsn/g;

my $ng = Pgauth::Nginx->new(pg => $pg, no_start => 1, conf => '');
my $www = "$ng->{dir}/player";
mkdir $www;
system("cp $TOP/util/www/index.html $www/");
$filled =~ s{^user www-data;\n}{}m;
$filled =~ s{^pid /run/nginx\.pid;\n}{}m;
$filled =~ s{^worker_processes auto;\n}{}m;
$filled =~ s{^include /etc/nginx/modules-enabled/\*\.conf;\n}{}m;
$filled =~ s{^error_log /dev/stderr notice;\n}{}m;
$filled =~ s{access_log /dev/stdout;}{access_log $ng->{dir}/logs/rtmp.log;};
$filled =~ s{listen 1935;}{listen 127.0.0.1:$ng->{rtmp_port};};
$filled =~ s{listen 8080;}{listen 127.0.0.1:$ng->{http_port};};
$filled =~ s{/var/www/hls}{$ng->{hls}}g;
$filled =~ s{/var/www/player}{$www}g;
my $temp = join '', map { "\n    ${_}_temp_path $ng->{dir}/tmp/$_;" }
                   qw(client_body proxy fastcgi uwsgi scgi);
$filled =~ s/^http \{/http {$temp/m;
$ng->write_conf($filled);
my ($rc, $check) = $ng->check_conf;
is($rc, 0, 'docker/nginx.conf passes nginx -t') or diag $check;
$ng->start;

my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'the demo key publishes');
my $ff = ffmpeg_publish("rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key", 5);
ok(wait_for(15, sub { -s "$ng->{hls}/demo.m3u8" }), 'HLS under the public name');
my ($code, $body) = http_get($ng->{http_port}, '/pgauth_status?format=json');
is($code, 200, '/pgauth_status is served');
my $j = decode_json($body);
is($j->{streams}[0]{name}, 'demo', '... listing the stream');
ok(!exists $j->{streams}[0]{client} && !exists $j->{figures},
   '... public: no client address, no figures');
($code, $body) = http_get($ng->{http_port}, '/metrics');
like($body, qr/^pgauth_decisions_total\{outcome="allowed",via="database"\} [1-9]\d*$/m,
     '/metrics: Prometheus text from loopback');
($code, $body) = http_get($ng->{http_port}, '/');
like($body, qr/<video/, 'the player page is served');
waitpid $ff, 0;
$r = rtmpc($ng->{rtmp_port}, 'live', name => 'wrong');
is($r->{status}{code}, 'NetStream.Publish.Denied', 'a wrong key is denied');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# the host's ports come from the environment; the build context (the
# repository root) leaves a host-built module out, for either builder
my $compose = Pgauth::slurp("$TOP/docker/compose.yaml");
like($compose, qr/"\$\{PGAUTH_RTMP_PORT:-1935\}:1935"/, 'compose: the RTMP port from PGAUTH_RTMP_PORT');
like($compose, qr/"\$\{PGAUTH_HTTP_PORT:-8080\}:8080"/, '... the HTTP port from PGAUTH_HTTP_PORT');
like($compose, qr/^\s+context: \.\.$/m, '... the context is the repository root');
my %ignored = map { $_ => 1 } grep { /\S/ && !/^#/ } split /\n/, Pgauth::slurp("$TOP/.dockerignore");
ok(!grep({ !$ignored{$_} } qw(objs build node_modules run .git)),
   'the root .dockerignore leaves out objs, build, node_modules, run and .git');
ok(!-e "$TOP/docker/Dockerfile.dockerignore", '... and is the only one (BuildKit would prefer docker/Dockerfile.dockerignore)');

done_testing();
