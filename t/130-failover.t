#!/usr/bin/perl
# A host list in pgauth_dsn: the first host down (libpq moves on, opening
# another socket), or hung (a listener that accepts and never answers: the
# pool moves on after connect_timeout), or a standby when the DSN asks for
# read-write.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');

sub nginx_with_dsn {
    my ($dsn, $app) = @_;
    my $conf = Pgauth::Nginx::default_conf(app => $app || '');
    $conf =~ s/pgauth_dsn "%%DSN%%"/pgauth_dsn "$dsn"/;
    return Pgauth::Nginx->new(conf => $conf, workers => 1);
}

my $down = free_port();
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 64, ReuseAddr => 1) or die;
my $hung = $hole->sockport;
my $real = $pg->{port};
my $base = 'dbname=pgauth user=pgauth_nginx';

# the first host refuses connections
my $ng = nginx_with_dsn("host=127.0.0.1,127.0.0.1 port=$down,$real $base");
my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'first host down: publishes through the second');
cmp_ok($r->{status}{ms}, '<', 500, "... at once ($r->{status}{ms} ms)");
$r = rtmpc($ng->{rtmp_port}, 'live', name => 'wrong');
is($r->{status}{code}, 'NetStream.Publish.Denied', '... and denies');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# the first host is hung: the pool gives it connect_timeout, then moves on
$ng = nginx_with_dsn("host=127.0.0.1,127.0.0.1 port=$hung,$real connect_timeout=1 $base",
                     'pgauth_timeout 3s;');
$r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'first host hung: publishes through the second');
cmp_ok($r->{status}{ms}, '<', 2500, "... within the timeout ($r->{status}{ms} ms, 1 s lost on the hung host)");
like($ng->error_log, qr/host "127\.0\.0\.1" port $hung did not answer in 1000ms, trying the next host/,
     'the move is logged');
$r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
cmp_ok($r->{status}{ms}, '<', 500, "the connection is then pooled: the next decision at once ($r->{status}{ms} ms)");
ok(wait_for(5, sub { $pg->listen_backends == 1 }),
   'the LISTEN connection failed over too, and keeps its application name');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# every host hung: refused at the deadline
$ng = nginx_with_dsn("host=127.0.0.1,127.0.0.1 port=$hung,$hung connect_timeout=1 $base",
                     'pgauth_timeout 3s;');
$r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Failed', 'every host hung: refused');
cmp_ok($r->{status}{ms}, '<=', 3300, "... within the timeout ($r->{status}{ms} ms)");
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# a standby first: target_session_attrs=read-write skips it (a cluster
# made read-only by default_transaction_read_only stands in for one)
my $ro = Pgauth::Pg->new;
$ro->psql("ALTER SYSTEM SET default_transaction_read_only = on");
$ro->psql("SELECT pg_reload_conf()");
$ng = nginx_with_dsn("host=127.0.0.1,127.0.0.1 port=$ro->{port},$real"
                     . " target_session_attrs=read-write $base");
$r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'read-only first host: target_session_attrs=read-write moves on');
is($pg->psql("SELECT count(*) FROM pgauth.sessions WHERE stream_name = 'alice'"), 4,
   'the sessions are in the read-write cluster');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

close $hole;
done_testing();
