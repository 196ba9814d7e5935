#!/usr/bin/perl
# docker/: first what the image runs, run directly: docker/nginx.conf as
# entrypoint.sh fills it in (paths and ports moved to the test's folder),
# and docker/20-nginx-role.sh against a fresh database with the schema
# loaded as the postgres image's init does.  Then, where a Docker engine is
# (as root with Debian's docker.io, the test starts dockerd itself), the
# image is built and docker/compose.yaml run for real: no registry can be
# reached here, so debian:bookworm is imported from a debootstrap
# (t/docker/base.sh) and the official postgres:15-bookworm is stood in for
# by Debian's PostgreSQL 15 running the same /docker-entrypoint-initdb.d
# scripts (t/docker/postgres).

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


SKIP: {
    # the image builds its own module: under the sanitizer, once is enough
    skip 'Docker: the image is built without the sanitizer: once is enough', 1
        if $ENV{PGAUTH_ASAN};
    my ($docker, $compose, $why) = docker_tools();
    skip "Docker: $why", 1 unless $docker;
    my $engine = Pgauth::Docker->new($docker);
    skip "Docker: $engine->{why}", 1 if $engine->{why};
    compose_run($engine, $compose);
}

done_testing();


# the docker command of the package (the engine's own version), and
# docker-compose (1.29 in Debian) or the CLI's compose plugin
sub docker_tools {
    my ($docker) = grep { -x } '/usr/bin/docker', '/usr/local/bin/docker';
    return (undef, undef, 'no docker command (Debian: docker.io)')
        unless $docker;
    my ($compose) = grep { -x } '/usr/bin/docker-compose';
    $compose //= "$docker compose"
        if system("$docker compose version >/dev/null 2>&1") == 0;
    return (undef, undef, 'no docker-compose (Debian: docker-compose)')
        unless $compose;
    return ($docker, $compose);
}

sub compose_run {
    my ($engine, $compose) = @_;
    my $docker = $engine->{docker};
    my $dir = Pgauth::tmpdir();
    my $project = 'pgautht190';
    my @files = ('-f', "$TOP/docker/compose.yaml", '-f', "$dir/test.yaml");
    my $dc = "$compose -p $project " . join ' ', @files;

    my $out = `DOCKER=$docker $TOP/t/docker/base.sh bookworm 2>&1`;
    is($?, 0, 'docker: a debian:bookworm image') or diag $out;
    diag $out if $out =~ /imported/;
    $out = `$docker build -q -t pgauth-test/postgres:15-bookworm $TOP/t/docker/postgres 2>&1`;
    is($?, 0, 'docker: the stand-in for postgres:15-bookworm builds') or diag $out;

    # the official image in compose.yaml, the stand-in here
    Pgauth::spew("$dir/test.yaml", <<'EOF2');
services:
  db:
    image: pgauth-test/postgres:15-bookworm
  nginx:
    build:
      labels:
        org.ngx-rtmp-pgauth.test: t190
EOF2
    my $rtmp = Pgauth::free_port();
    my $http = Pgauth::free_port();
    local $ENV{PGAUTH_RTMP_PORT} = $rtmp;
    local $ENV{PGAUTH_HTTP_PORT} = $http;
    local $ENV{DOCKER_BUILDKIT} = 0;
    $engine->{down} = "$dc down -v";

    my $t0 = time;
    $out = `$dc up -d --build 2>&1`;
    is($?, 0, 'docker: compose up --build') or diag substr($out, -3000);
    diag sprintf 'docker: compose up --build took %.0f s', time - $t0;
    # the image built before this one, if it changed
    system("$docker image prune -f --filter label=org.ngx-rtmp-pgauth.test=t190 >/dev/null 2>&1");

    # the module in the image was built in the image, not copied from here
    my $host = -f "$TOP/objs/ngx_rtmp_pgauth_module.so"
               ? `sha256sum $TOP/objs/ngx_rtmp_pgauth_module.so` : '';
    my $image = `$docker run --rm --entrypoint sha256sum ${project}_nginx /usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so 2>&1`;
    like($image, qr/^[0-9a-f]{64} /, 'docker: the image has the module');
    isnt((split ' ', $image)[0], (split ' ', $host)[0] // '',
         '... built in the image, not the host\'s objs/');

    my $key;
    wait_for(90, sub {
        ($key) = `$dc logs db 2>&1` =~ /demo key for stream 'demo': ([0-9a-f]{40})/;
        $key;
    });
    ok($key, 'docker: the database container printed the demo key');
    $key //= 'none';

    my $up = sub {
        wait_for(60, sub {
            rtmpc($rtmp, 'live', name => $key)->{status}{code}
                eq 'NetStream.Publish.Start';
        });
    };
    ok($up->(), 'docker: the demo key publishes through the published port');

    my $ff = ffmpeg_publish("rtmp://127.0.0.1:$rtmp/live/$key", 8,
                            "$dir/ffmpeg.log");
    my $body;
    ok(wait_for(20, sub {
        my ($code);
        ($code, $body) = http_get($http, '/hls/demo.m3u8');
        $code == 200 && $body =~ /^#EXTM3U/ && $body =~ /\.ts/;
    }), 'docker: HLS under the public name') or diag $body;
    my ($code, $json) = http_get($http, '/pgauth_status?format=json');
    my $j = eval { decode_json($json) } || {};
    is(($j->{streams}[0] || {})->{name}, 'demo',
       'docker: /pgauth_status lists the stream') or diag $json;
    ($code, $body) = http_get($http, '/metrics');
    like($body, qr/^pgauth_decisions_total\{outcome="allowed",via="database"\} [1-9]\d*$/m,
         'docker: /metrics from the host (a private address to nginx)');
    my $r = rtmpc($rtmp, 'live', name => 'wrong');
    is($r->{status}{code}, 'NetStream.Publish.Denied', 'docker: a wrong key is denied');
    waitpid $ff, 0;
    is($? >> 8, 0, 'docker: ffmpeg ran to its end')
        or diag Pgauth::slurp("$dir/ffmpeg.log");

    my $sessions = sub {
        my $n = `$dc exec -T db psql -U postgres -d pgauth -Atc "SELECT count(*) FROM pgauth.sessions" 2>&1`;
        $n =~ s/\s+\z//;
        return $n;
    };
    my $before = $sessions->();
    like($before, qr/^[1-9]\d*$/, "docker: sessions recorded ($before)");

    # down and up again: the volume keeps the database
    $out = `$dc down 2>&1`;
    is($?, 0, 'docker: compose down') or diag $out;
    $out = `$dc up -d 2>&1`;
    is($?, 0, 'docker: compose up again') or diag $out;
    ok($up->(), 'docker: after down and up, the same key publishes');
    cmp_ok($sessions->(), '>', $before, '... and the sessions of before are there');
    # down removed the first container: these are the new one's lines
    unlike(`$dc logs db 2>&1`, qr/demo key/,
           '... the database was not made again');

    $out = `$dc down -v 2>&1`;
    is($?, 0, 'docker: compose down -v') or diag $out;
    delete $engine->{down};
    is(`$docker ps -aq --filter label=com.docker.compose.project=$project`, '',
       '... no container left');
    is(`$docker volume ls -q --filter label=com.docker.compose.project=$project`, '',
       '... no volume left');
}


package Pgauth::Docker;

# The engine: the one running, or, as root with Debian's docker.io, a
# dockerd started here and stopped (by its pid) when the test ends.

use strict;
use warnings;

sub new {
    my ($class, $docker) = @_;
    my $self = bless { docker => $docker }, $class;
    return $self if system("$docker info >/dev/null 2>&1") == 0;
    if ($> != 0 || !-x '/usr/sbin/dockerd') {
        $self->{why} = 'no engine running, and none to start'
                       . ' (as root, with Debian\'s docker.io)';
        return $self;
    }
    $self->{dir} = Pgauth::tmpdir();
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$self->{dir}/dockerd.log";
        open STDERR, '>&', \*STDOUT;
        setpgrp(0, 0);
        exec '/usr/sbin/dockerd', '--pidfile', "$self->{dir}/dockerd.pid";
        exit 127;
    }
    $self->{pid} = $pid;
    if (!Pgauth::wait_for(60, sub { system("$docker info >/dev/null 2>&1") == 0 })) {
        $self->{why} = 'dockerd did not start: '
                       . (Pgauth::slurp("$self->{dir}/dockerd.log") // '');
    } else {
        Test::More::diag('docker: started dockerd, pid ' . $pid);
    }
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    system("$self->{down} >/dev/null 2>&1") if $self->{down};
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    Pgauth::wait_for(30, sub { waitpid($self->{pid}, 1) == $self->{pid} });
    kill 'KILL', $self->{pid} if kill 0, $self->{pid};
}

