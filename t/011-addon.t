#!/usr/bin/perl
# The config script, run by nginx's configure after another addon: what
# that addon left in ngx_module_type and ngx_module_order does not decide
# how this module's .so registers its modules (nor does it break the
# static build).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

plan skip_all => 'configure runs once: not again under the sanitizer'
    if $ENV{PGAUTH_ASAN};

my $tree = "$TOP/build/nginx";
plan skip_all => "no configured nginx tree in $tree (make builds one)"
    unless -x "$tree/configure";
my ($rtmp) = $ENV{NGX_RTMP_SRC} || map { s{/ngx_rtmp\.h$}{}r }
                                   glob "$TOP/build/rtmp/*/ngx_rtmp.h";
plan skip_all => 'no nginx-rtmp headers (make unpacks them)'
    unless $rtmp && -f "$rtmp/ngx_rtmp.h";

my $dir = tmpdir();
system('cp', '-a', "$tree/auto", "$tree/src", "$tree/configure", "$dir/") == 0
    or die "cp: $?";

# an HTTP filter with an order of its own, configured first
mkdir "$dir/early";
open(my $fh, '>', "$dir/early/config") or die;
print $fh <<'EOF';
ngx_addon_name=ngx_http_early_filter_module
ngx_module_type=HTTP_FILTER
ngx_module_name=ngx_http_early_filter_module
ngx_module_order="ngx_http_early_filter_module ngx_http_gzip_filter_module"
ngx_module_srcs=$ngx_addon_dir/early.c
ngx_module_link=$ngx_module_link
. auto/module
EOF
close $fh;

for my $link ('dynamic', 'static') {
    my $add = $link eq 'dynamic' ? 'add-dynamic-module' : 'add-module';
    my $out = `cd $dir && rm -rf objs && NGX_RTMP_SRC=$rtmp ./configure --without-http_rewrite_module --without-http_gzip_module --$add=$dir/early --$add=$TOP 2>&1`;
    is($?, 0, "$link: configure passes after another addon") or diag $out;

    if ($link eq 'dynamic') {
        my $m = Pgauth::slurp("$dir/objs/ngx_rtmp_pgauth_module_modules.c");
        like($m, qr/ngx_module_t \*ngx_modules\[\] = \{\s*&ngx_rtmp_pgauth_module,\s*&ngx_http_pgauth_status_module,\s*&ngx_http_pgauth_viewer_module,\s*NULL/,
             'dynamic: one .so with the three modules');
        like($m, qr/char \*ngx_module_order\[\] = \{\s*"ngx_http_pgauth_viewer_module",\s*"ngx_http_copy_filter_module",\s*NULL\s*\}/,
             '... its own load order (the viewer filter before the copy filter), not the other addon\'s');
    } else {
        my $m = Pgauth::slurp("$dir/objs/ngx_modules.c");
        my @names = $m =~ /^\s+"(\w+)",$/mg;
        my %at = map { $names[$_] => $_ } 0 .. $#names;
        ok(defined $at{ngx_rtmp_pgauth_module} && $at{ngx_rtmp_pgauth_module} < $at{ngx_http_module},
           'static: the module is a core one (before ngx_http_module)');
        ok(defined $at{ngx_http_pgauth_status_module} && $at{ngx_http_pgauth_status_module} > $at{ngx_http_core_module}
           && $at{ngx_http_pgauth_status_module} < $at{ngx_http_write_filter_module},
           '... its status handler an HTTP module, not a filter');
        # filters later in the list run first: the copy filter reads files
        # into memory before the viewer filter sees a playlist
        ok(defined $at{ngx_http_pgauth_viewer_module}
           && $at{ngx_http_pgauth_viewer_module} > $at{ngx_http_write_filter_module}
           && $at{ngx_http_pgauth_viewer_module} < $at{ngx_http_copy_filter_module},
           '... the viewer module a filter the copy filter runs before');
    }
}

done_testing();
