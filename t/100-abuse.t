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

sleep 3.2 - (time - $t);
$r = rtmpc($port, 'live', name => $key, from => '127.0.0.9');
is($r->{status}{code}, 'NetStream.Publish.Start', 'after the block time the address may publish again');

# a database error is not a failure of the client
$ng->stop;
is(join("\n", $ng->bad_lines), '', 'no alert, crash or sanitizer report');

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
cmp_ok($pg->nginx_backends, '<=', 4, 'backends within the pool');

$ng2->stop;
is(join("\n", $ng2->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
