#!/usr/bin/perl
# make deb: the package installs into the system nginx (root only: it
# changes the system, and is removed again at the end), its
# modules-enabled snippet loads the module after the rtmp module, and a
# publish goes through the installed module.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

plan skip_all => 'installs a package: root only' if $> != 0;
plan skip_all => 'PGAUTH_NO_DEB set' if $ENV{PGAUTH_NO_DEB};
plan skip_all => 'the package is built without the sanitizer: once is enough'
    if $ENV{PGAUTH_ASAN};
plan skip_all => 'the module is already installed on this system, not touching it'
    if -e '/usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so'
       && system('dpkg -s libnginx-mod-rtmp-pgauth >/dev/null 2>&1') != 0;
need_tools('psql', 'dpkg-buildpackage', $RTMPC);

my $out = `make -s -C $TOP deb 2>&1`;
is($?, 0, 'make deb builds') or diag $out;
my ($deb) = grep { !/dbgsym/ } glob "$TOP/build/deb/libnginx-mod-rtmp-pgauth_*.deb";
ok($deb, "the package is there ($deb)");

my $info = `dpkg-deb -f $deb Depends`;
# the ABI the installed nginx provides: nginx-abi-1.22.1-7 on bookworm,
# nginx-abi-1.26.3-1 on trixie
my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[\w.+~-]+)/;
$abi //= 'nginx-abi-* (which the installed nginx does not provide)';
like($info, qr/(^|[ ,])\Q$abi\E([ ,]|$)/m,
     "it depends on the nginx ABI it was built for ($abi)");
like($info, qr/libnginx-mod-rtmp/, '... and on the rtmp module');

$out = `DEBIAN_FRONTEND=noninteractive dpkg -i $deb 2>&1`;
is($?, 0, 'dpkg -i installs it') or diag $out;
my $installed = 1;

# whatever happens below, the system is left as it was
END {
    system('DEBIAN_FRONTEND=noninteractive dpkg --purge libnginx-mod-rtmp-pgauth'
           . ' >/dev/null 2>&1') if $installed;
}

ok(-f '/usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so', 'the module is in nginx\'s modules path');
is(readlink('/etc/nginx/modules-enabled/70-mod-rtmp-pgauth.conf'),
   '/usr/share/nginx/modules-available/mod-rtmp-pgauth.conf',
   'enabled as 70-mod-rtmp-pgauth.conf, after 50-mod-rtmp.conf');
ok(-f '/usr/share/ngx-rtmp-pgauth/pgauth.sql', 'the schema is installed');
ok(-f '/usr/share/doc/libnginx-mod-rtmp-pgauth/README.md.gz', 'the docs are installed');

# the system's nginx binary, loading modules through the system's
# modules-enabled snippets, publishing through the installed module
my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');
my $conf = Pgauth::Nginx::default_conf();
my $ng = Pgauth::Nginx->new(pg => $pg, no_module => 1, no_start => 1,
                            conf => "include /etc/nginx/modules-enabled/*.conf;\n$conf");
# no_module dropped our load_module line; the stock rtmp one stays in the
# harness's head, the snippets load both: keep only the snippets
my $text = Pgauth::slurp("$ng->{dir}/nginx.conf");
$text =~ s/^load_module .*ngx_rtmp_module\.so;\n//m;
Pgauth::spew("$ng->{dir}/nginx.conf", $text);
# the snippets say modules/..., relative to the prefix
symlink '/usr/lib/nginx/modules', "$ng->{dir}/modules";
$ng->start;
my $r = rtmpc($ng->{rtmp_port}, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'a valid key publishes through the installed module');
$r = rtmpc($ng->{rtmp_port}, 'live', name => 'wrong');
is($r->{status}{code}, 'NetStream.Publish.Denied', 'a wrong key is denied');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

$out = `DEBIAN_FRONTEND=noninteractive dpkg --purge libnginx-mod-rtmp-pgauth 2>&1`;
is($?, 0, 'dpkg --purge removes it') or diag $out;
$installed = 0;
ok(!-e '/usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so'
   && !-l '/etc/nginx/modules-enabled/70-mod-rtmp-pgauth.conf', '... completely');

done_testing();
