#!/usr/bin/perl
# make install lays out the module the Debian way: the .so next to the
# stock modules, a modules-available snippet enabled after the rtmp module's
# (50-mod-rtmp.conf), the schema.  Installed into a DESTDIR, then loaded by
# the stock nginx through those snippets.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

plan skip_all => 'no stock rtmp module snippet'
    unless -f '/usr/share/nginx/modules-available/mod-rtmp.conf';

my $dest = tmpdir();
my $out = `make -s -C $TOP install DESTDIR=$dest 2>&1`;
is($?, 0, 'make install DESTDIR=... succeeds') or diag $out;

ok(-f "$dest/usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so",
   'the module is in nginx\'s modules path');
my $snippet = "$dest/usr/share/nginx/modules-available/mod-rtmp-pgauth.conf";
is(Pgauth::slurp($snippet), "load_module modules/ngx_rtmp_pgauth_module.so;\n",
   'the modules-available snippet loads it');
my $link = "$dest/etc/nginx/modules-enabled/70-mod-rtmp-pgauth.conf";
is(readlink($link), '/usr/share/nginx/modules-available/mod-rtmp-pgauth.conf',
   'it is enabled in modules-enabled');
ok(-f "$dest/usr/share/ngx-rtmp-pgauth/pgauth.sql", 'the schema is installed');

my @order = sort map { s{.*/}{}r }
    (glob('/etc/nginx/modules-enabled/*rtmp*.conf'), $link);
is_deeply([ grep { /rtmp/ } @order ],
          [ '50-mod-rtmp.conf', '70-mod-rtmp-pgauth.conf' ],
          'modules-enabled sorts it after the rtmp module');

# the stock nginx loading through the snippets, from a prefix whose
# modules/ holds the stock rtmp module and the installed one
sub load_test {
    my (@snippets) = @_;
    my $p = tmpdir();
    my $port = free_port();
    mkdir "$p/modules";
    mkdir "$p/enabled";
    symlink '/usr/lib/nginx/modules/ngx_rtmp_module.so',
            "$p/modules/ngx_rtmp_module.so";
    symlink "$dest/usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so",
            "$p/modules/ngx_rtmp_pgauth_module.so";
    for my $s (@snippets) {
        my ($name, $file) = @$s;
        symlink $file, "$p/enabled/$name";
    }
    Pgauth::spew("$p/nginx.conf", <<"CONF");
include $p/enabled/*.conf;
error_log $p/error.log;
pid $p/nginx.pid;
events {}
rtmp {
    pgauth_dsn "host=127.0.0.1";
    # nginx-rtmp's default access log, /var/log/nginx, is root's
    access_log off;
    server {
        listen 127.0.0.1:$port;
        application live { live on; pgauth on; }
    }
}
CONF
    local %ENV = (%ENV, Pgauth::Nginx::sanitizer_env({ dir => $p }));
    my $o = `$Pgauth::NGINX -t -p $p -c $p/nginx.conf 2>&1`;
    return ($? >> 8, $o);
}

my ($rc, $o) = load_test(
    [ '50-mod-rtmp.conf', '/usr/share/nginx/modules-available/mod-rtmp.conf' ],
    [ '70-mod-rtmp-pgauth.conf', $snippet ]);
is($rc, 0, 'the stock nginx loads the installed module after the rtmp one')
    or diag $o;

($rc, $o) = load_test(
    [ '40-mod-rtmp-pgauth.conf', $snippet ],
    [ '50-mod-rtmp.conf', '/usr/share/nginx/modules-available/mod-rtmp.conf' ]);
isnt($rc, 0, 'loaded before the rtmp module, it fails (so the order matters)');
like($o, qr/ngx_rtmp_pgauth_module\.so.*(undefined symbol|failed)/,
     '... with a dlopen error naming it');

$out = `make -s -C $TOP uninstall DESTDIR=$dest 2>&1`;
ok(!-e "$dest/usr/lib/nginx/modules/ngx_rtmp_pgauth_module.so"
   && !-l $link, 'make uninstall removes it');
ok(!-e "$dest/usr/share/ngx-rtmp-pgauth", '... and leaves no empty directory of ours');

done_testing();
