#!/usr/bin/perl
# Brute force: the per-address limiter shared by all workers refuses a
# blocked address at once, without a query; other addresses are not
# affected; one log line per block, which the shipped fail2ban filter
# matches.  Hostile input at the protocol edge is refused cleanly.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');
my $bob = $pg->create_key('bob');

# every query nginx runs leaves a row: "no query" is checkable
$pg->psql("CREATE TABLE public.calls (addr text, at timestamptz DEFAULT now())");
$pg->psql("GRANT INSERT ON public.calls TO pgauth_nginx");
my $query = 'pgauth_query "WITH c AS (INSERT INTO public.calls (addr) VALUES ($3))'
          . ' SELECT * FROM pgauth.authorize($1, $2, $3, $4, $5)";';

my $ng = Pgauth::Nginx->new(pg => $pg, workers => 2,
    conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_limit_zone zone=publishers:1m failures=3 window=30s block=3s;',
        app => "pgauth_limit zone=publishers; $query"));
my $port = $ng->{rtmp_port};

sub calls { $pg->psql("SELECT count(*) FROM public.calls WHERE addr = '$_[0]'") }

for my $i (1 .. 3) {
    my $r = rtmpc($port, 'live', name => "guess$i", from => '127.0.0.9');
    is($r->{status}{desc}, 'Stream key rejected', "127.0.0.9: wrong key $i is rejected");
}
is(calls('127.0.0.9'), 3, 'each of those was a query');

my $t = time;
my $r = rtmpc($port, 'live', name => $key, from => '127.0.0.9');
is($r->{status}{code}, 'NetStream.Publish.Denied', 'blocked: even the right key is refused');
is($r->{status}{desc}, 'Too many failed attempts, try again later', '... saying why');
cmp_ok($r->{status}{ms}, '<', 100, "... at once ($r->{status}{ms} ms)");
for (1 .. 10) { rtmpc($port, 'live', name => "guess$_", from => '127.0.0.9') }
is(calls('127.0.0.9'), 3, 'no query for a blocked address, across both workers');

$r = rtmpc($port, 'live', name => $bob, from => '127.0.0.10');
is($r->{status}{code}, 'NetStream.Publish.Start', 'another address publishes meanwhile');

my @blocks = grep { /pgauth: blocked/ } split /\n/, $ng->error_log;
is(scalar @blocks, 1, 'one log line for the block');
like($blocks[0] // '', qr/\[warn\].*pgauth: blocked addr="127\.0\.0\.9" for 3s after 3 failed publishes/,
     '... naming the address, the time, the failures');

# the shipped fail2ban filter matches that line and nothing else
my ($failregex) = Pgauth::slurp("$TOP/docs/fail2ban/filter.d/nginx-rtmp-pgauth.conf")
                  =~ /^failregex = (.*)$/m;
(my $re = $failregex) =~ s/<HOST>/(?<host>[0-9a-fA-F.:]+)/;
my @hits = grep { /$re/ } split /\n/, $ng->error_log;
is(scalar @hits, 1, 'the fail2ban filter matches the block line only');
is($+{host}, '127.0.0.9', '... and extracts the address') if @hits && $hits[0] =~ /$re/;

# and so does fail2ban itself: Debian's fail2ban-regex, with the filter as
# shipped, on the error log as written
my ($f2b) = grep { -x } map { "$_/fail2ban-regex" } split /:/, $ENV{PATH};
ok($f2b, 'fail2ban-regex is installed (make test installs fail2ban)');
SKIP: {
    skip 'no fail2ban-regex', 3 unless $f2b;
    my $out = `$f2b --print-all-matched $ng->{dir}/logs/error.log $TOP/docs/fail2ban/filter.d/nginx-rtmp-pgauth.conf 2>&1`;
    like($out, qr/^Lines: \d+ lines, 0 ignored, 1 matched, \d+ missed/m,
         'fail2ban-regex: one line of the error log matches');
    like($out, qr/Matched line\(s\):\n\|\s+\S+ \S+ \[warn\].*pgauth: blocked addr="127\.0\.0\.9"/,
         '... the block of 127.0.0.9');
    like($out, qr/^Date template hits:\n\|- \[# of hits\] date format\n\|  \[[1-9]\d*\] \^Year\/Month\/Day 24hour:Minute:Second/m,
         '... its time read with the filter\'s datepattern, nginx\'s own');
}

sleep 3.2 - (time - $t);
$r = rtmpc($port, 'live', name => $key, from => '127.0.0.9');
is($r->{status}{code}, 'NetStream.Publish.Start', 'after the block time the address may publish again');

$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# parallel attempts from one address: counted as they start, under one
# lock, so no more than "failures" of them reach the database
$ng = Pgauth::Nginx->new(pg => $pg, workers => 2,
    conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_limit_zone zone=publishers:1m failures=3 window=30s block=30s;',
        app => 'pgauth_limit zone=publishers;'
               . ' pgauth_query "WITH c AS (INSERT INTO public.calls (addr) VALUES ($3))'
               . ' SELECT a.* FROM pgauth.authorize($1, $2, $3, $4, $5) a, pg_sleep(0.3)";'));
$port = $ng->{rtmp_port};
my @fh;
for my $i (1 .. 12) {
    my $pid = open(my $fh, '-|') // die;
    if (!$pid) {
        exec $RTMPC, '-n', "parallel$i", '-b', '127.0.0.11', '-t', '5000',
             "rtmp://127.0.0.1:$port/live";
    }
    push @fh, $fh;
}
my $denied = 0;
for my $fh (@fh) {
    $denied++ if grep { /NetStream\.Publish\.Denied/ } <$fh>;
    close $fh;
}
is($denied, 12, '12 wrong keys at once from one address: all refused');
cmp_ok(calls('127.0.0.11'), '<=', 3,
       '... and at most 3 (failures=3) reached the database: ' . calls('127.0.0.11'));
$r = rtmpc($port, 'live', name => $key, from => '127.0.0.11');
is($r->{status}{desc}, 'Too many failed attempts, try again later', '... then it is blocked');
$r = rtmpc($port, 'live', name => $bob, from => '127.0.0.12');
is($r->{status}{code}, 'NetStream.Publish.Start', 'another address publishes meanwhile');
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

# a full zone: what makes room is not an address serving its block, and
# running out of room is no [crit]
$ng = Pgauth::Nginx->new(pg => $pg,
    conf => Pgauth::Nginx::default_conf(
        rtmp => 'pgauth_limit_zone zone=small:32k failures=2 window=1m block=1h;',
        app => 'pgauth_limit zone=small;'));
$port = $ng->{rtmp_port};
rtmpc($port, 'live', name => 'guess', from => '127.0.1.1') for 1 .. 2;
$r = rtmpc($port, 'live', name => $key, from => '127.0.1.1');
is($r->{status}{desc}, 'Too many failed attempts, try again later', '127.0.1.1 is blocked');
for my $batch (0 .. 19) {
    my @b;
    for my $i (1 .. 30) {
        my $pid = open(my $fh, '-|') // die;
        if (!$pid) {
            exec $RTMPC, '-n', 'guess', '-b', '127.0.' . (2 + $batch) . ".$i",
                 '-t', '5000', "rtmp://127.0.0.1:$port/live";
        }
        push @b, $fh;
    }
    for my $fh (@b) { my @o = <$fh>; close $fh }
}
$r = rtmpc($port, 'live', name => $key, from => '127.0.1.1');
is($r->{status}{desc}, 'Too many failed attempts, try again later',
   '600 other addresses failing once later, in a 32k zone, 127.0.1.1 is still blocked');
unlike($ng->error_log, qr/\[(crit|alert)\]/, 'a full zone logs no [crit] or [alert]');
$ng->stop;

# IPv6 clients count by their /64
SKIP: {
    skip 'IPv6 addresses on lo: root only', 6 if $> != 0;
    skip 'no IPv6 on lo', 6 unless `ip -6 addr show dev lo 2>/dev/null` =~ /::1/;
    my @addrs = ('fd00:7067:6175:1::a', 'fd00:7067:6175:1::b', 'fd00:7067:6175:2::a');
    system("ip -6 addr add $_/64 dev lo nodad 2>/dev/null") for @addrs;
    my $ng6 = Pgauth::Nginx->new(pg => $pg,
        conf => Pgauth::Nginx::default_conf(
            rtmp => 'pgauth_limit_zone zone=v6:1m failures=2 window=1m block=1m;',
            app => 'pgauth_limit zone=v6;'));
    my $c = Pgauth::slurp("$ng6->{dir}/nginx.conf");
    $c =~ s/(listen 127\.0\.0\.1:(\d+);)/$1\n        listen [::1]:$2;/;
    Pgauth::spew("$ng6->{dir}/nginx.conf", $c);
    $ng6->stop;
    $ng6->start;
    my $p6 = $ng6->{rtmp_port};
    $r = rtmpc($p6, 'live', name => 'guess1', host => '[::1]', from => $addrs[0]);
    is($r->{status}{desc}, 'Stream key rejected', "$addrs[0]: a wrong key");
    $r = rtmpc($p6, 'live', name => 'guess2', host => '[::1]', from => $addrs[1]);
    is($r->{status}{desc}, 'Stream key rejected', "$addrs[1], same /64: a wrong key");
    $r = rtmpc($p6, 'live', name => $key, host => '[::1]', from => $addrs[0]);
    is($r->{status}{desc}, 'Too many failed attempts, try again later',
       '... the /64 is blocked after 2 failures from two of its addresses');
    $r = rtmpc($p6, 'live', name => $bob, host => '[::1]', from => $addrs[2]);
    is($r->{status}{code}, 'NetStream.Publish.Start', "$addrs[2], another /64, publishes");
    like($ng6->error_log, qr/pgauth: blocked addr="fd00:7067:6175:1::b"/,
         '... the block names the address that hit the limit');
    $ng6->stop;
    is(join("\n", $ng6->bad_lines), '', 'no alert, crash or sanitizer report');
    system("ip -6 addr del $_/64 dev lo 2>/dev/null") for @addrs;
}

# hostile input, every length around nginx-rtmp's limits
my $ng2 = Pgauth::Nginx->new(pg => $pg);
$port = $ng2->{rtmp_port};
for my $len (1, 64, 254, 255, 256, 300, 1000, 4096, 65535) {
    $r = rtmpc($port, 'live', len => $len);
    is($r->{status}{code}, 'NetStream.Publish.Denied', "a $len-byte name is denied");
}
$r = rtmpc($port, 'live', len => 100000);
ok($r->{exit} != 0 && $r->{status}{code} ne 'NetStream.Publish.Start',
   'a 100000-byte name (AMF long string) never publishes');
$r = rtmpc($port, 'live', name => "$key?" . ('a' x 5000));
is($r->{status}{code}, 'NetStream.Publish.Start', 'the valid key with 5000 bytes of arguments publishes (truncated)');
$r = rtmpc($port, 'live', name => $key . ('x' x 300));
is($r->{status}{code}, 'NetStream.Publish.Denied', 'the valid key with bytes past 255 appended: truncated, still not the key');
for my $hex ('00', '0a0d', '1b5b324a', 'ff', 'c0af', 'eda080', 'f4908080', 'e282') {
    $r = rtmpc($port, 'live', hex => $hex);
    ok($r->{status}{code} eq 'NetStream.Publish.Denied' || ($hex eq '00' && $r->{status}{code} eq 'NetStream.Publish.Denied'),
       "name bytes $hex are denied");
}
for my $hex ('ff', 'eda080', '0a') {
    $r = rtmpc($port, 'live', name => "$key?x=" . pack('H*', $hex));
    is($r->{status}{code}, 'NetStream.Publish.Denied' , "arguments with bytes $hex are denied")
        if $hex ne '0a';
    is($r->{status}{code}, 'NetStream.Publish.Start' , 'arguments with a newline are only data')
        if $hex eq '0a';
}

# a flood of publish commands on one connection
for my $n (2, 50, 1000) {
    $r = rtmpc($port, 'live', name => $key, flood => $n);
    ok($r->{closed}, "$n publish commands at once: the connection is closed");
    ok(!grep({ /NetStream\.Publish\.Start/ } @{$r->{out}}) || $n == 1,
       "$n publish commands at once: never published");
}
$r = rtmpc($port, 'live', name => $key);
is($r->{status}{code}, 'NetStream.Publish.Start', 'after all that, the valid key publishes');
ok(wait_for(5, sub { $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") == 0 }),
   'no session left open');
cmp_ok($pg->nginx_backends, '<=', 2,
       'backends within the pool (2, the default)');

$ng2->stop;
is(join("\n", $ng2->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
