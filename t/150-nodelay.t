#!/usr/bin/perl
# pgauth_tcp_nodelay: nginx-rtmp answers "connect" in several small writes
# with Nagle on, so a client that delays its ACKs (the usual kind) waits
# about 40 ms for the rest of the reply.  With TCP_NODELAY set on the
# session (the default) it does not.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Pgauth;

need_tools('psql', $RTMPC);

my $pg = Pgauth::Pg->new;
my $key = $pg->create_key('alice');

sub connect_ms {
    my ($port) = @_;
    my @ms;
    for (1 .. 10) {
        my $r = rtmpc($port, 'live', name => $key, delayed_acks => 1);
        my ($res) = grep { /^result [\d.]+ 1 _result/ } @{$r->{out}};
        my ($ms) = ($res // '') =~ /^result ([\d.]+)/;
        push @ms, $ms // 1e9;
    }
    return median(@ms);
}

my $off = Pgauth::Nginx->new(pg => $pg, conf => Pgauth::Nginx::default_conf(
    rtmp => 'pgauth_tcp_nodelay off;'));
my $on = Pgauth::Nginx->new(pg => $pg);

my $m_off = connect_ms($off->{rtmp_port});
my $m_on = connect_ms($on->{rtmp_port});
diag "connect reply, median of 10, client with delayed ACKs: off $m_off ms, on $m_on ms";

cmp_ok($m_off, '>=', 30, "pgauth_tcp_nodelay off: the connect reply waits for the delayed ACK ($m_off ms)");
cmp_ok($m_on, '<', 15, "pgauth_tcp_nodelay on (default): it does not ($m_on ms)");

$off->stop;
$on->stop;
is(join("\n", $off->bad_lines, $on->bad_lines), '', 'no alert, crash or sanitizer report');

done_testing();
