#!/usr/bin/perl
# Configuration errors fail "nginx -t" with a message naming the directive;
# valid configurations pass.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

sub conf_test {
    my (%o) = @_;
    my $ng = Pgauth::Nginx->new(no_start => 1,
                                conf => Pgauth::Nginx::default_conf(%o));
    return $ng->check_conf;
}

sub rtmp_conf {
    my ($rtmp, $app) = @_;
    $app ||= '';
    # no pgauth_dsn line of the default: the test gives all of it
    my $conf = Pgauth::Nginx::default_conf(
        rtmp => $rtmp, app => $app,
        pgauth => $app =~ /\bpgauth\s/ ? '' : 'pgauth on;');
    $conf =~ s/^\s*pgauth_dsn "%%DSN%%";\n//m;
    my $ng = Pgauth::Nginx->new(no_start => 1, conf => $conf);
    return $ng->check_conf;
}

my ($rc, $out);

($rc, $out) = conf_test();
is($rc, 0, 'the default test configuration passes nginx -t') or diag $out;

($rc, $out) = rtmp_conf('');
isnt($rc, 0, '"pgauth on" without pgauth_dsn fails');
like($out, qr/\[emerg\].*"pgauth on" requires "pgauth_dsn"/,
     '... naming pgauth_dsn');

($rc, $out) = rtmp_conf('', 'pgauth off;');
is($rc, 0, 'no pgauth_dsn is fine when no application uses pgauth')
    or diag $out;

my @bad = (
    [ 'pgauth_dsn "nosuchoption=1";', '',
      qr/invalid "pgauth_dsn": invalid connection option "nosuchoption"/,
      'unknown DSN option' ],
    [ 'pgauth_dsn "host=\'unterminated";', '',
      qr/invalid "pgauth_dsn": unterminated quoted string/,
      'malformed DSN' ],
    [ 'pgauth_dsn "";', '', qr/empty "pgauth_dsn"/, 'empty DSN' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_dsn "host=127.0.0.1";', '',
      qr/"pgauth_dsn" directive is duplicate/, 'duplicate DSN' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_dsn "host=127.0.0.1";',
      qr/"pgauth_dsn" directive is not allowed here/,
      'DSN in an application' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth maybe;',
      qr/invalid value "maybe" in "pgauth" directive/, 'pgauth not a flag' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_timeout 0;',
      qr/"pgauth_timeout" directive must be greater than 0/,
      'zero timeout' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_timeout soon;',
      qr/"pgauth_timeout" directive invalid value/, 'timeout not a time' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_pool_size 0;', '',
      qr/"pgauth_pool_size" directive.*must be between 1 and 1024/,
      'pool size 0' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_pool_size many;', '',
      qr/"pgauth_pool_size" directive invalid number/,
      'pool size not a number' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_queue_size 0;', '',
      qr/"pgauth_queue_size" directive.*must be between 1 and 65536/,
      'queue size 0' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_pool_size 2;',
      qr/"pgauth_pool_size" directive is not allowed here/,
      'pool size is per rtmp block' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_key_hash md5;',
      qr/invalid value "md5" in "pgauth_key_hash" directive, it must be "sha256" or "none"/,
      'unknown key hash' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_query "";',
      qr/"pgauth_query" directive is empty/, 'empty query' ],
    [ 'pgauth_dsn "host=127.0.0.1";',
      'pgauth_query "SELECT name FROM keys WHERE k = $1 AND x = $7";',
      qr/"pgauth_query" refers to \$7, only \$1\.\.\$6 are bound/,
      'query with $7' ],
    [ 'pgauth_dsn "host=127.0.0.1";',
      'pgauth_done_query "SELECT end_session($1, $2, $3)";',
      qr/"pgauth_done_query" refers to \$3, only \$1\.\.\$2 are bound/,
      'done query with $3' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_listen "bad-channel";', '',
      qr/invalid channel "bad-channel" in "pgauth_listen" directive/,
      'channel with a dash' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_listen Upper;', '',
      qr/invalid channel "Upper" in "pgauth_listen" directive/,
      'channel with capitals' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_recheck never;', '',
      qr/"pgauth_recheck" directive invalid value: a time greater than 0 and at most 24 days, or "off"/,
      'recheck not a time' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_recheck 25d;', '',
      qr/"pgauth_recheck" directive invalid value/, 'recheck past what a timer holds' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_timeout 25d;',
      qr/"pgauth_timeout" directive must be at most 2147483647ms/,
      'timeout past what statement_timeout holds' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_timeout 300000000000000000s;',
      qr/"pgauth_timeout" directive/, 'timeout that overflows' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_heartbeat 100d;', '',
      qr/"pgauth_heartbeat" directive must be at most 2147483647ms/,
      'heartbeat past what an int of milliseconds holds' ],
    [ 'pgauth_dsn "host=127.0.0.1 connect_timeout=9999999999";', '',
      qr/"pgauth_dsn" connect_timeout "9999999999" is too large/,
      'connect_timeout that overflows' ],
    [ 'pgauth_dsn "host=127.0.0.1";', q{pgauth_query "COPY (SELECT 'x', $1) TO STDOUT";},
      qr/"pgauth_query" cannot be COPY/, 'COPY as the query' ],
    [ 'pgauth_dsn "host=127.0.0.1";', q{pgauth_query "/* hi */ copy (SELECT 'x', $1) TO STDOUT";},
      qr/"pgauth_query" cannot be COPY/, 'COPY after a comment' ],
    [ 'pgauth_dsn "host=127.0.0.1";',
      q{pgauth_query "SELECT name FROM keys WHERE k = $1; SELECT 2";},
      qr/"pgauth_query" must be one statement/, 'two statements' ],
    [ 'pgauth_dsn "host=127.0.0.1";',
      q{pgauth_query "SELECT name FROM keys WHERE k = '$1'";},
      qr/"pgauth_query" must use \$1/, 'a query without $1 (only in a string)' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_done_query "SELECT 1 -- $1";',
      qr/"pgauth_done_query" must use \$1/, 'a done query without $1 (only in a comment)' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_query "/* $1";',
      qr/"pgauth_query" has no statement/, 'a query that is a comment' ],
    [ 'pgauth_dsn "host=127.0.0.1";', q{pgauth_query "SELECT $1, 'x";},
      qr/"pgauth_query" leaves a quote or comment open/, 'an open quote' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_recheck 0;', '',
      qr/"pgauth_recheck" directive invalid value/, 'recheck 0' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_recheck_failure drop;', '',
      qr/invalid value "drop" in "pgauth_recheck_failure" directive, it must be "keep" or "end"/,
      'unknown recheck failure policy' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_heartbeat 0;', '',
      qr/"pgauth_heartbeat" directive must be greater than 0/, 'heartbeat 0' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_node "";', '',
      qr/"pgauth_node" must not be empty/, 'empty node name' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_duplicate kick;',
      qr/invalid value "kick" in "pgauth_duplicate" directive, it must be "takeover" or "refuse"/,
      'unknown duplicate policy' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_limit zone=nowhere;',
      qr/unknown zone "nowhere" in "pgauth_limit": no "pgauth_limit_zone" defines it/,
      'limit with an undefined zone' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone failures=3;', '',
      qr/"pgauth_limit_zone" must have "zone" parameter/, 'limit zone without zone=' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone zone=a:1m failures=x;', '',
      qr/invalid parameter "failures=x" in "pgauth_limit_zone" directive/,
      'limit zone with bad failures' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone zone=a:1m block=soon;', '',
      qr/invalid parameter "block=soon" in "pgauth_limit_zone" directive/,
      'limit zone with bad block time' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone zone=a:1k;', '',
      qr/zone "zone=a:1k" is too small in "pgauth_limit_zone" directive/,
      'limit zone too small' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone zone=a:1m; pgauth_limit_zone zone=a:1m;', '',
      qr/duplicate zone "a" in "pgauth_limit_zone" directive/, 'limit zone twice' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone zone=a:1m;', 'pgauth_limit a;',
      qr/invalid parameter "a" in "pgauth_limit" directive/, 'limit without zone=' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_tcp_nodelay on;',
      qr/"pgauth_tcp_nodelay" directive is not allowed here/,
      'tcp_nodelay is per server' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_cache zone=nowhere;',
      qr/unknown zone "nowhere" in "pgauth_cache": no "pgauth_cache_zone" defines it/,
      'cache with an undefined zone' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_limit_zone zone=l:1m;', 'pgauth_cache zone=l;',
      qr/zone "l" in "pgauth_cache" is not a "pgauth_cache_zone"/,
      'cache with a limit zone' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_cache_zone zone=c:1m ttl=0;', '',
      qr/invalid parameter "ttl=0" in "pgauth_cache_zone" directive/, 'cache ttl 0' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_cache_fallback 1h;',
      qr/"pgauth_cache_fallback" requires "pgauth_cache"/, 'fallback without cache' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_listen x;',
      qr/"pgauth_listen" directive is not allowed here/,
      'listen is per rtmp block' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth on off;',
      qr/invalid number of arguments in "pgauth" directive/,
      'pgauth with two arguments' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_pool_mode statement;', '',
      qr/invalid value "statement" in "pgauth_pool_mode" directive/,
      'pool mode statement' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_pool_mode transaction;', '',
      qr/"pgauth_pool_mode transaction" requires "pgauth_listen_dsn" \(a connection where LISTEN works\) or "pgauth_listen off"/,
      'transaction mode with LISTEN through the pooler' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_listen_dsn "nosuchoption=1";', '',
      qr/invalid "pgauth_listen_dsn": invalid connection option "nosuchoption"/,
      'unknown listen DSN option' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_listen_dsn "";', '',
      qr/empty "pgauth_listen_dsn"/, 'empty listen DSN' ],
    [ 'pgauth_dsn "host=127.0.0.1"; pgauth_listen_dsn "connect_timeout=9999999";', '',
      qr/"pgauth_listen_dsn" connect_timeout "9999999" is too large/,
      'listen DSN connect_timeout too large' ],
    [ 'pgauth_dsn "host=127.0.0.1";', 'pgauth_listen_dsn "host=127.0.0.1";',
      qr/"pgauth_listen_dsn" directive is not allowed here/,
      'listen DSN in an application' ],
);

for my $b (@bad) {
    my ($rtmp, $app, $re, $name) = @$b;
    ($rc, $out) = rtmp_conf($rtmp, $app);
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: the message names the directive") or diag $out;
}

# accepted: every directive at the levels it is documented for
($rc, $out) = rtmp_conf(
    'pgauth_dsn "host=127.0.0.1 port=5432 dbname=x application_name=y";'
    . ' pgauth_pool_size 8; pgauth_queue_size 512; pgauth_timeout 5s;'
    . ' pgauth_key_hash none; pgauth off; pgauth_listen my_channel;'
    . ' pgauth_node edge-1; pgauth_heartbeat 2s; pgauth_recheck 1m;'
    . ' pgauth_recheck_failure end; pgauth_duplicate refuse;'
    . ' pgauth_limit_zone zone=z:1m failures=5 window=1m block=10m;'
    . ' pgauth_limit zone=z; pgauth_tcp_nodelay off;'
    . ' pgauth_cache_zone zone=c:1m ttl=10s; pgauth_cache zone=c;'
    . ' pgauth_cache_fallback 1h;',
    'pgauth on; pgauth_timeout 1500ms; pgauth_key_hash sha256;'
    . ' pgauth_duplicate takeover; pgauth_limit off;'
    . ' pgauth_query "SELECT $1::text, NULL; -- one statement";'
    . q{ pgauth_done_query "SELECT $$a;b$$, E'\\\\';', $1";});
is($rc, 0, 'every directive at its documented level') or diag $out;

($rc, $out) = rtmp_conf('pgauth_dsn "host=127.0.0.1"; pgauth_listen off;'
                        . ' pgauth_recheck off;');
is($rc, 0, 'live control off') or diag $out;

($rc, $out) = rtmp_conf('pgauth_dsn "host=127.0.0.1 port=6432";'
                        . ' pgauth_pool_mode transaction;'
                        . ' pgauth_listen_dsn "host=127.0.0.1 port=5432";');
is($rc, 0, 'transaction mode with a LISTEN connection of its own')
    or diag $out;

($rc, $out) = rtmp_conf('pgauth_dsn "host=127.0.0.1"; pgauth_listen off;'
                        . ' pgauth_pool_mode transaction;');
is($rc, 0, 'transaction mode without live control') or diag $out;

($rc, $out) = rtmp_conf('pgauth_dsn "host=127.0.0.1";'
                        . ' pgauth_listen_dsn "host=db.example.com";');
like($out, qr/\[warn\].*"pgauth_listen_dsn" host "db\.example\.com" is a name/,
     'a host name in the listen DSN is warned about, naming it');

# a host name makes libpq block the worker while resolving: warned about
($rc, $out) = rtmp_conf('pgauth_dsn "host=db.example.com dbname=x";');
is($rc, 0, 'a host name in the DSN is accepted');
like($out, qr/\[warn\].*"pgauth_dsn" host "db\.example\.com" is a name/,
     '... with a warning that it blocks');

($rc, $out) = rtmp_conf('pgauth_dsn "host=db.example.com hostaddr=10.0.0.1";');
unlike($out, qr/is a name/, 'no warning when hostaddr is given');

($rc, $out) = rtmp_conf('pgauth_dsn "host=/run/postgresql,127.0.0.1,::1";');
unlike($out, qr/is a name/, 'no warning for sockets and addresses');

# ... wherever the host comes from: PGHOST, or a service file
{
    local $ENV{PGHOST} = 'pg.example.com';
    ($rc, $out) = rtmp_conf('pgauth_dsn "dbname=x";');
    like($out, qr/\[warn\].*"pgauth_dsn" host "pg\.example\.com" \(from PGHOST\) is a name/,
         'a host name from PGHOST is warned about');
}
{
    my $dir = Pgauth::tmpdir();
    Pgauth::spew("$dir/services", "# ours\n[other]\nhost=10.0.0.9\n\n"
                 . "[streaming]\ndbname=x\nhost = db.internal\nport=5432\n");
    local $ENV{PGSERVICEFILE} = "$dir/services";
    ($rc, $out) = rtmp_conf('pgauth_dsn "service=streaming";');
    like($out, qr/\[warn\].*"pgauth_dsn" host "db\.internal" \(from its service\) is a name/,
         'a host name from the service file is warned about');
    ($rc, $out) = rtmp_conf('pgauth_dsn "service=other";');
    unlike($out, qr/is a name/, '... an address there is not');
}

# pgauth_status, in an http location
for my $b (['pgauth_status full;', qr/invalid value "full" in "pgauth_status" directive, it must be "public"/, 'a value other than public'],
           ['pgauth_status public extra;', qr/invalid number of arguments in "pgauth_status" directive/, 'two values'],
           ['pgauth_status; pgauth_status public;', qr/"pgauth_status" directive is duplicate/, 'twice'])
{
    ($rc, $out) = conf_test(http => "location = /s { $b->[0] }");
    isnt($rc, 0, "pgauth_status, $b->[2]: nginx -t fails");
    like($out, $b->[1], '... naming the directive') or diag $out;
}
($rc, $out) = conf_test(http => 'location = /s { pgauth_status; }'
                        . ' location = /p { pgauth_status public; }');
is($rc, 0, 'pgauth_status and pgauth_status public') or diag $out;

# pgauth_viewer, in an http location
for my $b (['pgauth_viewer maybe;', qr/invalid parameter "maybe" in "pgauth_viewer" directive/, 'neither on nor off'],
           ['pgauth_viewer on room=5;', qr/invalid parameter "room=5" in "pgauth_viewer" directive/, 'an unknown parameter'],
           ['pgauth_viewer on; pgauth_viewer off;', qr/"pgauth_viewer" directive is duplicate/, 'twice'],
           # nginx itself refuses a zone nothing defines, before any module
           # may say more (the rtmp block that could define it may come later)
           ['pgauth_viewer on limit=nowhere;', qr/zero size shared memory zone "nowhere"/, 'an undefined limit zone'])
{
    ($rc, $out) = conf_test(http => "location /v/ { $b->[0] }");
    isnt($rc, 0, "pgauth_viewer, $b->[2]: nginx -t fails");
    like($out, $b->[1], '... naming the directive') or diag $out;
}
($rc, $out) = conf_test(rtmp => 'pgauth_limit_zone zone=viewers:1m;',
                        http => 'location /v/ { pgauth_viewer on app=live limit=viewers; }'
                        . ' location /w/ { pgauth_viewer on; }');
is($rc, 0, 'pgauth_viewer with app= and a limit zone of the rtmp block') or diag $out;
($rc, $out) = conf_test(rtmp => 'pgauth_cache_zone zone=c:1m;',
                        http => 'location /v/ { pgauth_viewer on limit=c; }');
like($out, qr/zone "c" in "pgauth_viewer" is not a "pgauth_limit_zone"/,
     'pgauth_viewer with a cache zone as its limit: nginx -t fails') or diag $out;

done_testing();
