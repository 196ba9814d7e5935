#!/usr/bin/perl
# make bench: the module against what it replaces, on this machine, in one
# run, written to docs/benchmarks.md.
#
#   perl util/bench.pl [--out docs/benchmarks.md] [--quick]
#
# One PostgreSQL (the project's schema, pg_stat_statements), the same keys,
# four set-ups side by side, each an nginx with one worker and the stock
# rtmp module:
#
#   a  no auth           nginx-rtmp alone
#   b  on_publish + Go   nginx-rtmp's on_publish to t/bench/authsvc (Go,
#                        net/http + lib/pq, the same pgauth.authorize())
#   c  pgauth            this module
#   d  pgauth + cache    this module with pgauth_cache (warmed)
#   e  on_publish + Go,  the usual small service this module replaces:
#      plain lookup      authsvc -plain, a key looked up, nothing recorded
#
# and, one at a time only, c0 (pgauth_lookup_first off) and cz (a
# pgauth_query that reads nothing: what one round trip to PostgreSQL
# through the module costs, the floor of any query on the path).
#
# PostgreSQL runs with its default durability (fsync, synchronous_commit,
# full_page_writes on), unlike the tests' clusters; the report prints the
# settings.  c then runs five times in a row at 64 concurrent on one
# nginx (a decline shows what is read again for each ended session).
# pgbench then runs the SQL the module sends per publish, with
# as many clients as the module's pool has connections, against this
# schema and against the schema before the work of issue 13 ($BASE), in
# one more database of the same PostgreSQL.  Last, what nginx runs with
# 1,000,000 sessions of history, and c's batch of decisions with 100,000
# keys (pgbench).
#
# Load from t/bench/loadc (C, epoll).  Latency and throughput runs use
# loadc -q (quick ACKs) so that they measure the decision, not nginx-rtmp's
# Nagle wait; "time to live" measures what real clients see, without it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);
use JSON::PP;
use Pgauth;

my $out = "$TOP/docs/benchmarks.md";
my $quick = 0;
GetOptions('out=s' => \$out, 'quick' => \$quick) or die "usage\n";

my $LOADC = "$TOP/build/bench/loadc";
my $AUTHSVC = "$TOP/build/authsvc/authsvc";
my $SEQ_N = $quick ? 300 : 2000;
my $CONC_SECS = $quick ? 4 : 10;
# rounds of the set-ups in turn: the host's speed varies from minute to minute
my $ROUNDS = $ENV{BENCH_ROUNDS} // ($quick ? 1 : 3);
die "BENCH_ROUNDS: a number of rounds, 1 or more\n" unless $ROUNDS =~ /^[1-9]\d*$/;
my $RSS_N = $quick ? 10000 : 100000;
my $PACED_N = $quick ? 200 : 1000;
my $PACE = 5;           # ms between the spaced publishes
my $SUST_N = 5;         # sustained: runs in a row
my $SUST_SECS = $quick ? 3 : 6;
my $CONC = 64;
my $NKEYS = 128;
my $POOL = 2;           # pgauth_pool_size's default: the module's backends
my $BASE = 'f5f04ba';   # the schema before issue 13

my @report;
sub say_ { my ($l) = @_; print "$l\n"; push @report, $l }

sub run_json {
    my (@cmd) = @_;
    my $o = `@cmd`;
    die "failed: @cmd\n$o" if $? >> 8;
    return decode_json($o);
}

# undef for a process gone meanwhile
sub stat_cpu {
    my ($pid) = @_;
    my ($stat) = Pgauth::slurp("/proc/$pid/stat") =~ /\) (.*)/;
    return undef unless defined $stat;
    my @f = split / /, $stat;
    return ($f[11] + $f[12]) * 10000;   # utime + stime, ticks of 10 ms, in us
}

# the whole machine's busy CPU (us): every process, the load client's
# and the Go service's included, and the kernel's softirq work for
# loopback; /proc/stat counts ticks of 10 ms
sub machine_cpu {
    my @f = split ' ', (Pgauth::slurp('/proc/stat') =~ /^cpu (.*)$/m)[0];
    # user nice system idle iowait irq softirq: all but idle and iowait
    return ($f[0] + $f[1] + $f[2] + $f[5] + $f[6]) * 10000;
}

# utime + stime of PostgreSQL's processes, by pid (us); the postmaster's
# with that of its children gone (cutime, cstime): backends that ended
sub pg_cpu {
    my ($pg) = @_;
    my $pm = $pg->pid;
    my %c;
    # a backend that ended since pgrep: its time is the postmaster's now
    for my $pid (split ' ', `pgrep -P $pm`) {
        my $us = stat_cpu($pid);
        $c{$pid} = $us if defined $us;
    }
    my @f = split / /, (Pgauth::slurp("/proc/$pm/stat") =~ /\) (.*)/)[0];
    $c{$pm} = ($f[11] + $f[12] + $f[13] + $f[14]) * 10000;
    return \%c;
}

sub pg_cpu_since {
    my ($pg, $before) = @_;
    my $now = pg_cpu($pg);
    my $us = 0;
    $us += $now->{$_} - ($before->{$_} // 0) for keys %$now;
    # a process gone since: its whole time is in the postmaster's now
    $us -= $before->{$_} for grep { !exists $now->{$_} } keys %$before;
    return $us;
}

sub rss_kb {
    my ($pid) = @_;
    my ($kb) = Pgauth::slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)/m;
    return $kb;
}

# --- the pieces ---

system("make -s -C $TOP objs/ngx_rtmp_pgauth_module.so t/tools/rtmpc") == 0 or die;
system("mkdir -p $TOP/build/bench && cc -O2 -Wall -Wextra -Werror -I$TOP/t/tools -o $LOADC $TOP/t/bench/loadc.c $TOP/t/tools/rtmp.c") == 0
    or die "loadc does not build\n";
system("sh $TOP/t/bench/authsvc/build.sh $TOP/build/authsvc >/dev/null") == 0
    or die "authsvc does not build (apt-get install golang-go golang-github-lib-pq-dev)\n";

my $pg = Pgauth::Pg->new(durable => 1, conf => [ "shared_preload_libraries = 'pg_stat_statements'",
                                   "pg_stat_statements.track = all",
                                   "max_connections = 200" ]);
$pg->psql("CREATE EXTENSION pg_stat_statements");
my @keys = map { $pg->create_key("bench$_") } 1 .. $NKEYS;
my $keyfile = "$pg->{dir}/keys.txt";
Pgauth::spew($keyfile, join("\n", @keys) . "\n");
system("chmod 644 $keyfile");

my $settings = $pg->psql("SELECT string_agg(name || ' = ' || setting"
                         . " || coalesce(unit, ''), ', ' ORDER BY name)"
                         . " FROM pg_settings WHERE name IN ('fsync',"
                         . " 'synchronous_commit', 'full_page_writes',"
                         . " 'wal_sync_method', 'commit_delay', 'shared_buffers',"
                         . " 'wal_writer_delay')");
print "bench: PostgreSQL $settings\n";

# b: the same functions as the module; e: a plain lookup, as a login of
# its own that may read the keys
$pg->psql("CREATE ROLE authsvc LOGIN; GRANT USAGE ON SCHEMA pgauth TO authsvc;"
          . " GRANT SELECT ON pgauth.stream_keys TO authsvc");
my (%goport, @gopids);
for my $w ('b', 'e') {
    my $port = free_port();
    my $pid = fork // die;
    if (!$pid) {
        my $dsn = $pg->dsn . ' sslmode=disable';
        $dsn =~ s/user=pgauth_nginx/user=authsvc/ if $w eq 'e';
        exec $AUTHSVC, '-listen', "127.0.0.1:$port", '-dsn', $dsn,
             '-pool', 8, $w eq 'e' ? ('-plain') : ();
        die "exec authsvc: $!";
    }
    wait_for(10, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) })
        or die "authsvc does not listen\n";
    $goport{$w} = $port;
    push @gopids, $pid;
}

my %app = (
    a => 'live on;',
    b => "live on;\n on_publish http://127.0.0.1:$goport{b}/on_publish;\n"
         . " on_publish_done http://127.0.0.1:$goport{b}/on_publish_done;",
    c => 'live on; pgauth on;',
    d => 'live on; pgauth on; pgauth_cache zone=decisions;',
    c0 => 'live on; pgauth on; pgauth_lookup_first off;',
    # the floor of any query on the path: one round trip through the
    # module to PostgreSQL and back, for a statement that reads nothing
    cz => 'live on; pgauth on;'
          . ' pgauth_query "SELECT NULL::text WHERE $1 IS NOT NULL";',
    e => "live on;\n on_publish http://127.0.0.1:$goport{e}/on_publish;\n"
         . " on_publish_done http://127.0.0.1:$goport{e}/on_publish_done;",
);
my %label = (a => 'a. no auth', b => 'b. on_publish + Go service',
             c => 'c. pgauth', d => 'd. pgauth + cache',
             c0 => 'c. pgauth, pgauth_lookup_first off',
             cz => 'c. pgauth, a query that reads nothing',
             e => 'e. on_publish + Go, plain lookup');

sub conf {
    my ($which, %o) = @_;
    my $mod = $which =~ /^[cd]/;
    my $rtmp = $mod ? "pgauth_dsn \"%%DSN%%\";\n"
                      . "pgauth_cache_zone zone=decisions:10m ttl=10m;\n"
                      . ($o{nodelay_off} ? "pgauth_tcp_nodelay off;\n" : '')
                    : '';
    my $hls = $o{hls} ? "hls on; hls_path %%HLS%%; hls_fragment 1s;" : '';
    return <<"EOF";
events { worker_connections 8192; }
worker_rlimit_nofile 20000;
rtmp {
    $rtmp
    server {
        listen 127.0.0.1:%%RTMP_PORT%%;
        application live { $app{$which} $hls }
    }
}
http {
    access_log off;
    client_body_temp_path %%DIR%%/tmp/body;
    proxy_temp_path %%DIR%%/tmp/proxy;
    fastcgi_temp_path %%DIR%%/tmp/fastcgi;
    uwsgi_temp_path %%DIR%%/tmp/uwsgi;
    scgi_temp_path %%DIR%%/tmp/scgi;
    server {
        listen 127.0.0.1:%%HTTP_PORT%%;
        location /hls/ { alias %%HLS%%/; }
    }
}
EOF
}

sub nginx_for {
    my ($which, %o) = @_;
    return Pgauth::Nginx->new(pg => $pg, conf => conf($which, %o),
                              no_module => ($which !~ /^[cd]/),
                              log_level => 'warn');
}

sub queries {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     # not authorize() inside authorize_many()
                     . " WHERE ((query ~* 'pgauth\\.(authorize|publish_done"
                     . "|take_over|check_sessions|look_up)' AND toplevel)"
                     # e's plain lookup
                     . " OR query ~* '^SELECT stream_name, 0::bigint')"
                     . " AND query !~* 'pg_stat_statements'");
}

# the statements that decided: authorize() alone, authorize_many() for
# several (calls, and the publishes they allowed)
sub decisions {
    my ($many) = @_;
    my $re = $many ? '^SELECT n, stream_name, session_id, valid_for, takeover FROM pgauth\\.authorize_many'
                   : '^SELECT stream_name, session_id, valid_for, takeover FROM pgauth\\.authorize\\(';
    return split /\|/, $pg->psql("SELECT coalesce(sum(calls), 0) || '|' || coalesce(sum(rows), 0)"
                                 . " FROM pg_stat_statements WHERE toplevel AND query ~* '$re'");
}

sub batches {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     . " WHERE query ~* '^SELECT pgauth\\.publish_done_many'");
}

# pgauth_lookup_first's lookups
sub lookups {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     . " WHERE toplevel AND query ~* 'pgauth\\.look_up\\('");
}

sub takeovers {
    return $pg->psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                     . " WHERE query ~* '^SELECT pgauth\\.take_over'");
}

sub loadc {
    my ($port, @args) = @_;
    return run_json($LOADC, '-j', '-k', $keyfile, @args,
                    "rtmp://127.0.0.1:$port/live");
}

my $NCPU = () = Pgauth::slurp('/proc/cpuinfo') =~ /^processor/mg;
my $machine = sprintf "%s, %d CPUs, %s; Linux %s; nginx %s, libnginx-mod-rtmp %s, PostgreSQL %s",
    (Pgauth::slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m)[0] // '?',
    $NCPU,
    sprintf('%.1f GiB', ((Pgauth::slurp('/proc/meminfo') =~ /MemTotal:\s+(\d+)/)[0] || 0) / 1048576),
    (split ' ', `uname -r`)[0],
    (`/usr/sbin/nginx -v 2>&1` =~ m{nginx/(\S+)})[0],
    `dpkg-query -W -f='\${Version}' libnginx-mod-rtmp` // '?',
    ($pg->psql('SHOW server_version') =~ /^(\S+)/)[0];
my $commit = `git -C $TOP rev-parse --short HEAD 2>/dev/null`; chomp $commit;

print "bench: $machine\n";

# --- 1. sequential latency, 2. throughput, 3. CPU per decision,
#        4. queries per publish ---

my (%seq, %conc, %cpu, %pgcpu, %mcpu, %mutil, %qpp, %unconfirmed, $batch, $takeovers,
    $lookups, %decided, %round);
my $server = '';

# each round runs every set-up once, in turn: a slower minute of the host
# weighs on all of them alike.  Reported: each set-up's round of median
# throughput (concurrent), the medians of the rounds' percentiles
# (sequential), and what a set-up adds over a as the median of each
# round's difference
for my $round (1 .. $ROUNDS) { for my $w (qw(a b c d e)) {
    my %o;
    my $ng = nginx_for($w);
    my ($worker) = $ng->worker_pids;

    # warm up: connections, the cache of d
    loadc($ng->{rtmp_port}, '-q', '-c', 16, '-N', 2 * $NKEYS);
    sleep 1;

    $pg->psql("SELECT pg_stat_statements_reset()") if $w eq 'c' && $round == 1;
    my $q0 = queries();
    my $r = loadc($ng->{rtmp_port}, '-q', '-c', 1, '-N', $SEQ_N);
    sleep 1;
    my $q1 = queries();
    if ($w eq 'c' && $round == 1) {
        # where PostgreSQL spends an authorization, statements inside included
        $server = $pg->psql("SELECT round(mean_exec_time::numeric * 1000), calls,"
                            . " regexp_replace(left(query, 70), '\\s+', ' ', 'g')"
                            . " FROM pg_stat_statements WHERE calls >= $SEQ_N"
                            . " AND query !~* 'pg_stat_statements'"
                            . " ORDER BY mean_exec_time DESC LIMIT 8");
    }
    $o{seq} = $r;
    $o{qpp} = ($q1 - $q0) / ($r->{outcomes}{start} || 1);
    printf "bench: %s sequential p50 %.3f p99 %.3f ms (%d start)\n", $w,
           $r->{latency_start_ms}{p50}, $r->{latency_start_ms}{p99}, $r->{outcomes}{start};

    my $b0 = batches();
    my $t0 = takeovers();
    my $l0 = lookups();
    my ($s0) = decisions(0);
    my ($m0, $r0) = decisions(1);
    my $c0 = stat_cpu($worker);
    my $p0 = pg_cpu($pg);
    my ($h0, $wall0) = (machine_cpu(), Time::HiRes::time());
    $r = loadc($ng->{rtmp_port}, '-q', '-c', $CONC, '-w', 1, '-d', $CONC_SECS);
    my $c1 = stat_cpu($worker);
    $o{mcpu} = (machine_cpu() - $h0) / ($r->{attempts} || 1);
    # how busy the CPUs were, of all they had
    $o{mutil} = (machine_cpu() - $h0)
                / ((Time::HiRes::time() - $wall0) * $NCPU * 1e6);
    # the warm-up second included: PostgreSQL is read around the whole run
    $o{pgcpu} = pg_cpu_since($pg, $p0) / ($r->{attempts} || 1);
    $o{conc} = $r;
    $o{cpu} = ($c1 - $c0) / ($r->{attempts} || 1);
    # c: how many ends of sessions each publish_done_many() carried
    if ($w eq 'c') {
        $o{batch} = ($r->{outcomes}{start} || 0) / ((batches() - $b0) || 1);
        # and how many of its publishes took a name over (take_over())
        $o{takeovers} = (takeovers() - $t0) / ($r->{outcomes}{start} || 1);
        # and how many went live on a lookup first
        $o{lookups} = (lookups() - $l0) / ($r->{outcomes}{start} || 1);
        # and how many were decided alone, how many in batches of how many
        my ($s1) = decisions(0);
        my ($m1, $r1) = decisions(1);
        $o{decided} = { alone => $s1 - $s0, batches => $m1 - $m0,
                        batched => $r1 - $r0 };
    }
    printf "bench: %s %d concurrent: %.0f starts/s, worker %.0f us, PostgreSQL %.0f us, machine %.0f us a publish (%.0f%% busy)\n",
           $w, $CONC, $r->{start_per_s}, $o{cpu}, $o{pgcpu}, $o{mcpu},
           100 * $o{mutil};
    $o{unconfirmed} = () = $ng->error_log =~ /pgauth: not confirmed/g;
    push @{$round{$w}}, \%o;

    $ng->stop;
} }

# the round of the median: of an odd count, the middle one
sub median_round {
    my ($runs, $key) = @_;
    my @s = sort { $key->($a) <=> $key->($b) } @$runs;
    return $s[$#s / 2];
}

# the median of each percentile over the rounds: one round's tail is
# often the host's, not the set-up's
sub median_latency {
    my @runs = @_;
    return { map { my $p = $_;
                   ($p => median(map { $_->{latency_start_ms}{$p} } @runs)) }
             qw(p50 p99) };
}

# what a set-up adds over a: the median of the rounds' differences, each
# round's of the same minute of the host
sub median_added {
    my ($runs, $a_runs) = @_;
    return { map { my $p = $_;
                   ($p => median(map { $runs->[$_]{latency_start_ms}{$p}
                                       - $a_runs->[$_]{latency_start_ms}{$p} }
                                 0 .. $#$runs)) }
             qw(p50 p99) };
}

for my $w (qw(a b c d e)) {
    my $s = median_round($round{$w}, sub { $_[0]{seq}{latency_start_ms}{p50} });
    my $o = median_round($round{$w}, sub { $_[0]{conc}{start_per_s} });
    $seq{$w} = { %{$s->{seq}},
                 latency_start_ms => median_latency(map { $_->{seq} } @{$round{$w}}) };
    $qpp{$w} = $s->{qpp};
    ($conc{$w}, $cpu{$w}, $pgcpu{$w}, $mcpu{$w}, $mutil{$w}, $unconfirmed{$w})
        = @$o{qw(conc cpu pgcpu mcpu mutil unconfirmed)};
    ($batch, $takeovers, $lookups) = @$o{qw(batch takeovers lookups)}
        if $w eq 'c';
    %decided = %{$o->{decided}} if $w eq 'c';
}

my %added = map { my $w = $_; ($w => median_added([ map { $_->{seq} } @{$round{$w}} ],
                                                   [ map { $_->{seq} } @{$round{a}} ])) }
             qw(b c d e);

# --- 4b. one at a time, spaced: each publish's record and end are over
#     before the next comes, as on a server that is not saturated ---

my (%paced, %paced_runs);
for my $round (1 .. $ROUNDS) {
    for my $w (qw(a c c0 cz d e)) {
        my $ng = nginx_for($w);
        loadc($ng->{rtmp_port}, '-q', '-c', 16, '-N', 2 * $NKEYS);
        sleep 1;
        my $r = loadc($ng->{rtmp_port}, '-q', '-c', 1, '-N', $PACED_N, '-p', $PACE);
        push @{$paced_runs{$w}}, $r;
        printf "bench: %s spaced %d ms: p50 %.3f p99 %.3f ms (%d start)\n", $w, $PACE,
               $r->{latency_start_ms}{p50}, $r->{latency_start_ms}{p99}, $r->{outcomes}{start};
        $ng->stop;
    }
}
%paced = map { ($_ => { latency_start_ms => median_latency(@{$paced_runs{$_}}) }) }
         keys %paced_runs;
my %padded = map { ($_ => median_added($paced_runs{$_}, $paced_runs{a})) }
             qw(c c0 cz d e);
# c's added latency against a third of e's: no measure where e's is not
# above a's (a's own tail then decides)
sub third_of_e {
    my ($c, $e) = @_;
    return "no measure (e's not above a's)" if $e <= 0;
    return $c <= $e / 3 ? 'yes' : 'no';
}
my $pp50_ok = third_of_e($padded{c}{p50}, $padded{e}{p50});
my $pp99_ok = third_of_e($padded{c}{p99}, $padded{e}{p99});

# --- 4c. sustained: c at $CONC concurrent, run after run on one nginx
#     and on the table the runs before grew, as a busy server goes on:
#     what is read again for each ended session shows as a decline ---

my (@sustained, @sust_rows);
{
    my $ng = nginx_for('c');
    loadc($ng->{rtmp_port}, '-q', '-c', 16, '-N', 2 * $NKEYS);
    sleep 1;
    push @sust_rows, $pg->psql("SELECT count(*) FROM pgauth.sessions");
    for my $i (1 .. $SUST_N) {
        my $p0 = pg_cpu($pg);
        my $r = loadc($ng->{rtmp_port}, '-q', '-c', $CONC, '-d', $SUST_SECS);
        push @sustained, [ $r->{start_per_s},
                           pg_cpu_since($pg, $p0) / ($r->{attempts} || 1) ];
        printf "bench: c sustained run %d: %.0f starts/s, PostgreSQL %.0f us"
               . " a publish\n", $i, @{$sustained[-1]};
    }
    push @sust_rows, $pg->psql("SELECT count(*) FROM pgauth.sessions");
    $ng->stop;
}

# --- 5. RSS over 100,000 decisions ---

my %rss;
for my $w (qw(c d)) {
    my $ng = nginx_for($w);
    my ($worker) = $ng->worker_pids;
    loadc($ng->{rtmp_port}, '-q', '-c', $CONC, '-N', 2000);
    sleep 1;
    my $before = rss_kb($worker);
    my $r = loadc($ng->{rtmp_port}, '-q', '-c', $CONC, '-N', $RSS_N);
    sleep 2;
    my $after = rss_kb($worker);
    $rss{$w} = [ $before, $after, $r->{outcomes}{start} ];
    printf "bench: %s RSS %d kB -> %d kB over %d publishes\n", $w, $before, $after, $r->{outcomes}{start};
    $ng->stop;
}

# --- 6. time to live for ffmpeg, and the Nagle wait ---

sub ffmpeg_ttl {
    my ($ng, $key) = @_;
    my $trace = "$ng->{dir}/strace.txt";
    system("strace -f -tt -e trace=connect,recvfrom,read -s 512 -o $trace "
           . "ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=160x120:rate=10 "
           . "-t 1 -c:v libx264 -preset ultrafast -f flv rtmp://127.0.0.1:$ng->{rtmp_port}/live/$key "
           . ">/dev/null 2>&1");
    my ($t0, $t1);
    for my $l (split /\n/, Pgauth::slurp($trace)) {
        if (!defined $t0 && $l =~ /^\d+\s+(\d+):(\d+):([\d.]+) connect\(.*sin_port=htons\($ng->{rtmp_port}\)/) {
            $t0 = $1 * 3600 + $2 * 60 + $3;
        }
        if (defined $t0 && $l =~ /^\d+\s+(\d+):(\d+):([\d.]+) .*NetStream\.Publish\.Start/) {
            $t1 = $1 * 3600 + $2 * 60 + $3;
            last;
        }
    }
    return defined $t1 ? ($t1 - $t0) * 1000 : undef;
}

my %ttl;
for my $case ([ 'a', 'a. no auth (stock nginx-rtmp)', () ],
              [ 'c', 'c. pgauth, pgauth_tcp_nodelay off', nodelay_off => 1 ],
              [ 'c', 'c. pgauth (pgauth_tcp_nodelay on, the default)' ]) {
    my ($w, $label, %o) = @$case;
    my $ng = nginx_for($w, %o);
    my @ms = grep { defined } map { ffmpeg_ttl($ng, $keys[$_]) } 0 .. ($quick ? 2 : 6);
    $ttl{$label} = [ median(@ms), (sort { $b <=> $a } @ms)[0], scalar @ms ];
    printf "bench: ffmpeg time to live, %s: median %.1f ms\n", $label, median(@ms) // -1;
    # and our client without quick ACKs, sequential
    my $r = loadc($ng->{rtmp_port}, '-c', 1, '-N', $quick ? 50 : 200);
    push @{$ttl{$label}}, $r->{latency_start_ms}{p50}, $r->{latency_start_ms}{p99};
    $ng->stop;
}

# --- 7. the event loop while PostgreSQL is stalled ---

my %probe;
{
    my $ng = nginx_for('c', hls => 1);
    my $port = $ng->{rtmp_port};
    # a key of its own: the load below cycles through @keys
    my $live = $pg->create_key('probe');
    my $ff = ffmpeg_publish("rtmp://127.0.0.1:$port/live/$live", 40);
    wait_for(15, sub { -s "$ng->{hls}/probe.m3u8" }) or die "no HLS\n";
    sleep 2;
    my $newest = sub { my ($n) = Pgauth::slurp("$ng->{hls}/probe.m3u8") =~ /probe-(\d+)\.ts\s*\z/; $n // -1 };

    # publishes arriving all along
    my $lpid = fork // die;
    if (!$lpid) {
        open STDOUT, '>', '/dev/null';
        exec $LOADC, '-k', $keyfile, '-c', 8, '-d', 9, '-t', 3000, "rtmp://127.0.0.1:$port/live";
        exit 127;
    }
    sleep 1;
    my $seg0 = $newest->();
    $pg->freeze;
    my $t0 = time;
    my ($worst, $n) = (0, 0);
    while (time - $t0 < 5) {
        my ($code, undef, $secs) = http_get($ng->{http_port}, '/hls/probe.m3u8');
        $worst = $secs if $secs > $worst;
        $n++;
        sleep 0.01;
    }
    my $seg1 = $newest->();
    $pg->cont;
    waitpid $lpid, 0;
    $probe{worst_ms} = $worst * 1000;
    $probe{requests} = $n;
    $probe{segments} = $seg1 - $seg0;
    printf "bench: stall 5 s: %d HTTP requests, worst %.1f ms, %d new segments\n",
           $n, $worst * 1000, $seg1 - $seg0;
    kill 'INT', $ff;
    waitpid $ff, 0;
    $ng->stop;
}

# --- 8. where the module's time goes (callgrind) ---

my $profile = '';
{
    my $dir = tmpdir();
    my $conf = "master_process off;\ndaemon off;\n" . conf('c');
    my $ng = Pgauth::Nginx->new(pg => $pg, conf => $conf, no_start => 1, dir => $dir,
                                log_level => 'warn');
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec 'valgrind', '--tool=callgrind', "--callgrind-out-file=$dir/callgrind.out",
             '/usr/sbin/nginx', '-p', $dir, '-c', "$dir/nginx.conf";
        exit 127;
    }
    wait_for(60, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ng->{rtmp_port}) });
    sleep 1;
    my $n = $quick ? 100 : 400;
    rtmpc($ng->{rtmp_port}, 'live', name => $keys[$_ % $NKEYS], timeout => 30000) for 1 .. $n;
    kill 'QUIT', $pid;
    waitpid $pid, 0;
    my $ann = `callgrind_annotate --inclusive=yes $dir/callgrind.out 2>/dev/null`;
    my %fn;
    for my $l (split /\n/, $ann) {
        next unless $l =~ /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+):(\w+) \[/;
        my ($ir, $file, $f) = ($1, $2, $3);
        $ir =~ tr/,//d;
        next unless $f =~ /^(ngx_rtmp_pgauth_\w+|ngx_rtmp_(publish|close_stream)|PQ\w+|EVP_Digest)$/;
        $fn{$f} = $ir if !$fn{$f} || $ir > $fn{$f};
    }
    for my $f (sort { $fn{$b} <=> $fn{$a} } keys %fn) {
        next if $fn{$f} / $n < 200;
        $profile .= sprintf "| `%s` | %.0f |\n", $f, $fn{$f} / $n;
    }
    $ng->{running} = 0;
}

# pgbench, $POOL clients as the pool has connections, each a worker of
# node bench, of the scripts in @files on $db for $secs: the
# transactions, their rate and PostgreSQL's CPU over the run (us)
sub pgbench_pool {
    my ($user, $db, $secs, @files) = @_;
    my $p0 = pg_cpu($pg);
    my $cmd = "PGOPTIONS='-c pgauth.node=bench -c pgauth.worker=1'"
              . " $pg->{bin}/pgbench -n -h 127.0.0.1 -p $pg->{port} -U $user"
              . " -c $POOL -j 2 -M extended -T $secs @files $db 2>&1";
    my $out = `$cmd`;
    my $us = pg_cpu_since($pg, $p0);
    my ($n) = $out =~ /number of transactions actually processed: (\d+)/;
    my ($tps) = $out =~ /tps = ([\d.]+)/;
    die "pgbench $db: $out" unless $n && defined $tps;
    return ($n, $tps, $us);
}

# what nginx sends for a batch of decisions, of the keys whose digests
# (hex) are given: their session ids, joined, into the pgbench variable
sub batch_sql {
    my ($var, @hex) = @_;
    my $arr = sub { "ARRAY[" . join(',', ($_[0]) x @hex) . "]" };
    return "SELECT string_agg(session_id::text, ',') AS $var"
           . " FROM pgauth.authorize_many(ARRAY["
           . join(',', map { "'\\x$_'::bytea" } @hex) . "], "
           . join(', ', map { $arr->($_) } "'live'", "'127.0.0.1'", "''",
                                           "'takeover'", "'{}'")
           . ") \\gset\n";
}

# --- 8b. the database's cost per publish: pgbench running the SQL the
#     module sends per publish (authorize() as nginx calls it, then
#     publish_done()), $POOL clients as the pool has connections, each as
#     a worker of its own, against this schema and the one before ---

my %dbcost;
{
    my $dir = tmpdir();
    chmod 0755, $dir;
    system("git -C $TOP show $BASE:src/pgauth.sql > $dir/base.sql") == 0
        or die "git show $BASE:src/pgauth.sql\n";
    $pg->psql_db('postgres', 'CREATE DATABASE pgauth_base');
    my $o = `psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $pg->{port} -U postgres -d pgauth_base -f $dir/base.sql 2>&1`;
    die "base schema: $o" if $?;
    my $rows = $pg->psql("SELECT string_agg(format('(%L::bytea, %L)', key_digest, stream_name), ',')"
                         . " FROM pgauth.stream_keys WHERE stream_name LIKE 'bench%'");
    $pg->psql_db('pgauth_base', "INSERT INTO pgauth.stream_keys (key_digest, stream_name) VALUES $rows");

    # one script per key, picked at random: the digest as nginx sends it
    my @digests = split /\n/, $pg->psql("SELECT encode(key_digest, 'hex') FROM pgauth.stream_keys"
                                        . " WHERE stream_name LIKE 'bench%' ORDER BY id");
    # before: authorize() and publish_done() for each publish; now: as
    # many authorize() as c's publish_done_many() carried ends on average,
    # then one publish_done_many() of them
    my $b = int(($batch // 1) + 0.5) || 1;
    my $per_mille = int(1000 * ($takeovers // 0) + 0.5);
    my $look_per_mille = int(1000 * ($lookups // 0) + 0.5);
    my $all = ($decided{alone} // 1) + ($decided{batched} // 0);
    my $alone = int($b * ($decided{alone} // 1) / ($all || 1) + 0.5);
    my $many = $decided{batches}
               ? int($decided{batched} / $decided{batches} + 0.5) || 1 : 1;
    $dbcost{alone} = ($decided{alone} // 1) / ($all || 1);
    $dbcost{many} = $decided{batches} ? $decided{batched} / $decided{batches} : 0;
    $dbcost{batch} = $batch;
    $dbcost{takeovers} = $takeovers;
    $dbcost{lookups} = $lookups;
    my (%files, $auth);
    for my $i (0 .. $#digests) {
        # now: with $6 as nginx binds it ("{}": no end of the key on its way)
        $auth = sub {
            my ($d, $p, $now) = @_;
            return "SELECT stream_name, session_id, valid_for, takeover"
                   . " FROM pgauth.authorize('\\x$d'::bytea, 'live',"
                   . " '127.0.0.1', '', 'takeover', true"
                   . ($now ? ", '{}'::text::bigint[]" : '') . ") \\gset $p\n";
        };
        my $f = "$dir/before$i.sql";
        Pgauth::spew($f, $auth->($digests[$i], 'p_')
                         . "SELECT pgauth.publish_done(:p_session_id, 'unpublish');\n");
        push @{$files{pgauth_base}}, '-f', $f;
        $f = "$dir/now$i.sql";
        # the $b publishes: as many alone as in c's run, the others in
        # batches of authorize_many() as large as there
        my ($sql, @ids) = ('');
        my $j = 0;
        while ($j < $b) {
            my $k = $j < $alone ? 1 : ($many < $b - $j ? $many : $b - $j);
            my @d = map { $digests[($i + $j + $_) % @digests] } 1 .. $k;
            my $v = "g$j";
            # pgauth_lookup_first: a lookup before, for as many as in c's run
            for my $n (0 .. $#d) {
                $sql .= "\\set l${j}_$n random(1, 1000)\n"
                        . "\\if :l${j}_$n <= $look_per_mille\n"
                        . "SELECT stream_name, session_id, valid_for, takeover"
                        . " FROM pgauth.look_up('\\x$d[$n]'::bytea, 'live');\n"
                        . "\\endif\n";
            }
            if ($k == 1) {
                $sql .= $auth->($d[0], "${v}_", 1);
                push @ids, ":${v}_session_id";
            } else {
                $sql .= batch_sql("${v}_ids", @d);
                push @ids, ":${v}_ids";
            }
            $sql .= "\\set t$j random(1, 1000)\n"
                    . "\\if :t$j <= " . ($per_mille * $k) . "\n"
                    . "SELECT pgauth.take_over(split_part($ids[-1]::text, ',', 1)::bigint);\n"
                    . "\\endif\n";
            $j += $k;
        }
        Pgauth::spew($f, $sql
                         # pgbench binds each variable: ids joined in SQL
                         . "SELECT pgauth.publish_done_many(string_to_array(concat_ws(',', "
                         . join(', ', map { "${_}::text" } @ids) . "), ',')::bigint[],"
                         . " array_fill('unpublish'::text, ARRAY[$b]));\n");
        push @{$files{pgauth}}, '-f', $f;
    }
    my $secs = $quick ? 3 : 10;
    # in turn, three times each: the disk's flushes vary from run to run
    for my $round (1 .. 3) {
        for my $db ('pgauth_base', 'pgauth') {
            my $per = $db eq 'pgauth' ? $b : 1;
            my ($n, $tps, $us) = pgbench_pool('pgauth_nginx', $db, $secs,
                                              @{$files{$db}});
            push @{$dbcost{$db}{runs}}, $tps * $per;
            push @{$dbcost{$db}{cpus}}, $us / ($n * $per);
            printf "bench: pgbench %s, %d clients: %.0f publishes/s, PostgreSQL %.0f us a publish\n",
                   $db, $POOL, $tps * $per, $us / ($n * $per);
        }
    }
    for my $db ('pgauth_base', 'pgauth') {
        $dbcost{$db}{tps} = median(@{$dbcost{$db}{runs}});
        $dbcost{$db}{cpu} = median(@{$dbcost{$db}{cpus}});
    }
}

# --- 8c. what a batch's decisions cost over recording their sessions:
#     authorize_many() of as many as c's batches held, against the least
#     that records as many sessions (one INSERT of them all, without
#     waiting for the flush), each then ended by publish_done_many(),
#     $POOL clients, in turn three times ---

my %floor;
{
    my $dir = tmpdir();
    chmod 0755, $dir;
    my @digests = split /\n/, $pg->psql("SELECT encode(key_digest, 'hex') FROM pgauth.stream_keys"
                                        . " WHERE stream_name LIKE 'bench%' ORDER BY id");
    my $k = $decided{batches}
            ? int($decided{batched} / $decided{batches} + 0.5) || 1 : 1;
    # no key twice in a batch: a client has a share of the keys
    $k = int(@digests / $POOL) if $k > @digests / $POOL;
    # both end their sessions as nginx does: only the decisions differ
    my $end = "SELECT pgauth.publish_done_many(string_to_array(:ids::text, ',')::bigint[],"
              . " array_fill('unpublish'::text, ARRAY[$k]));\n";
    my %sql = (
        batch => sub { return batch_sql('ids', @_) . $end },
        floor => sub {
            my $d = join(',', map { "'\\x$_'::bytea" } @_);
            return "BEGIN;\nSET LOCAL synchronous_commit = off;\n"
                   . "WITH i AS (INSERT INTO pgauth.sessions (key_id, stream_name, app,"
                   . " client_addr, node, worker_pid)"
                   . " SELECT sk.id, sk.stream_name, sk.app, '127.0.0.1', 'bench', 1"
                   . " FROM unnest(ARRAY[$d]) AS u(digest) JOIN pgauth.stream_keys sk"
                   . " ON sk.key_digest = u.digest AND sk.app = 'live' RETURNING id)"
                   . " SELECT string_agg(id::text, ',') AS ids FROM i \\gset\nCOMMIT;\n"
                   . $end;
        },
    );
    # each client its own keys, as in c's run no key is decided twice at
    # once (two transactions sharing a row lock make a MultiXact, which
    # nginx's batches do not), one of three batches of them at random
    my %files;
    for my $w ('batch', 'floor') {
        my $script = "\\set r random(0, 2)\n";
        for my $c (0 .. $POOL - 1) {
            my @own = @digests[grep { $_ % $POOL == $c } 0 .. $#digests];
            for my $r (0 .. 2) {
                my @d = map { $own[($r * $k + $_) % @own] } 0 .. $k - 1;
                $script .= ($c || $r ? "\\elif" : "\\if")
                           . " :client_id = $c and :r = $r\n" . $sql{$w}->(@d);
            }
        }
        Pgauth::spew("$dir/$w.sql", "$script\\endif\n");
        $files{$w} = ['-f', "$dir/$w.sql"];
    }
    my $secs = $quick ? 3 : 8;
    for my $round (1 .. 3) {
        for my $w ('batch', 'floor') {
            my $user = $w eq 'batch' ? 'pgauth_nginx' : 'postgres';
            my ($n, undef, $us) = pgbench_pool($user, 'pgauth', $secs,
                                               @{$files{$w}});
            push @{$floor{$w}{runs}}, $n * $k / $secs;
            push @{$floor{$w}{cpus}}, $us / ($n * $k);
            printf "bench: pgbench %s of %d, %d clients: %.0f publishes/s, PostgreSQL %.0f us a publish\n",
                   $w, $k, $POOL, $n * $k / $secs, $us / ($n * $k);
        }
    }
    for my $w ('batch', 'floor') {
        $floor{$w}{tps} = median(@{$floor{$w}{runs}});
        $floor{$w}{cpu} = median(@{$floor{$w}{cpus}});
    }
    $floor{k} = $k;
}

# pgbench, one client, of the script in $file on the database pgauth: its
# transactions a second
sub pgbench_one {
    my ($file) = @_;
    my $secs = $quick ? 2 : 5;
    my $cmd = "$pg->{bin}/pgbench -n -h 127.0.0.1 -p $pg->{port}"
              . " -U postgres -c 1 -T $secs -f $file pgauth 2>&1";
    my $o = `$cmd`;
    my ($tps) = $o =~ /tps = ([\d.]+)/;
    die "pgbench $file: $o" unless defined $tps;
    return $tps;
}

# --- 9. a year of history: what nginx runs, on 1,000,000 ended sessions ---

my %hist;
{
    my $dir = tmpdir();
    chmod 0755, $dir;
    my @live = map { $pg->create_key("hist$_") } 1 .. 20;
    my @ids = map {
        $pg->psql("SELECT session_id FROM pgauth.authorize(sha256(convert_to('$_',"
                  . " 'UTF8')), 'live', '127.0.0.1', '', 'takeover', true)")
    } @live;
    my %script = (
        'authorize + publish_done' =>
            "\\set k random(1, $NKEYS)\n"
            . "SELECT s.session_id AS sid FROM pgauth.authorize((SELECT key_digest"
            . " FROM pgauth.stream_keys WHERE stream_name = 'bench' || :k), 'live',"
            . " '127.0.0.1', '', 'takeover', true) s \\gset\n"
            . "SELECT pgauth.publish_done(:sid, 'unpublish');\n",
        'check_sessions of 20 live' =>
            "SELECT count(*) FROM pgauth.check_sessions('{" . join(',', @ids) . "}');\n",
        'heartbeat' => "SELECT pgauth.heartbeat('bench', 1, 5000, 'h');\n",
    );
    my $pgbench = sub {
        my ($name) = @_;
        (my $f = "$dir/$name.sql") =~ s/[^\w\/.-]+/_/g;
        Pgauth::spew($f, $script{$name});
        return pgbench_one($f);
    };
    $hist{rows0} = $pg->psql("SELECT count(*) FROM pgauth.sessions");
    $hist{before}{$_} = $pgbench->($_) for sort keys %script;
    $pg->psql("INSERT INTO pgauth.sessions (key_id, stream_name, app, client_addr,"
              . " started_at, ended_at, end_reason, node, worker_pid)"
              . " SELECT i % $NKEYS + 1, 'bench' || (i % $NKEYS + 1), 'live', '192.0.2.1',"
              . " now() - interval '1 year' + i * interval '30 seconds',"
              . " now() - interval '1 year' + i * interval '30 seconds' + interval '20 minutes',"
              . " 'unpublish', 'old', 1000 FROM generate_series(1, 1000000) AS i");
    $pg->psql("VACUUM ANALYZE pgauth.sessions");
    $hist{rows1} = $pg->psql("SELECT count(*) FROM pgauth.sessions");
    $hist{after}{$_} = $pgbench->($_) for sort keys %script;
    my $t = time;
    $hist{purged} = $pg->psql("SELECT pgauth.purge_sessions('90 days')");
    $hist{purge_s} = time - $t;
    printf "bench: history %d -> %d rows: %s\n", $hist{rows0}, $hist{rows1},
           join(', ', map { sprintf '%s %.0f -> %.0f tps', $_, $hist{before}{$_},
                                    $hist{after}{$_} } sort keys %script);
}

# --- 10. many keys: c's batch of decisions among 100,000 keys ---

my %many;
{
    my $dir = tmpdir();
    chmod 0755, $dir;
    my $n = 10;
    my $digests = join ', ', map { "sha256(convert_to('$_', 'UTF8'))" }
                                 @keys[0 .. $n - 1];
    my $list = sub { '{' . join(',', ($_[0]) x $n) . '}' };
    # a batch of decisions as c sends it, then the batch of their ends
    my $f = "$dir/many.sql";
    Pgauth::spew($f, "SELECT array_agg(session_id) AS ids"
                     . " FROM pgauth.authorize_many(ARRAY[$digests],"
                     . " '" . $list->('live') . "', '" . $list->('127.0.0.1')
                     . "', '" . $list->('""') . "', '" . $list->('takeover')
                     . "', '" . $list->('NULL') . "') \\gset\n"
                     . "SELECT pgauth.publish_done_many(':ids'::bigint[],"
                     . " array_fill('unpublish'::text, ARRAY[$n]));\n");
    $many{keys0} = $pg->psql("SELECT count(*) FROM pgauth.stream_keys");
    $many{before} = pgbench_one($f) * $n;
    $pg->psql("INSERT INTO pgauth.stream_keys (key_digest, stream_name, app)"
              . " SELECT sha256(convert_to('many' || i, 'UTF8')), 'many' || i,"
              . " 'live' FROM generate_series(1, 100000) AS i;"
              . " ANALYZE pgauth.stream_keys");
    $many{keys1} = $pg->psql("SELECT count(*) FROM pgauth.stream_keys");
    $many{after} = pgbench_one($f) * $n;
    printf "bench: keys %d -> %d: a batch of %d and its ends, %.0f -> %.0f publishes/s\n",
           $many{keys0}, $many{keys1}, $n, $many{before}, $many{after};
}

# --- the report ---

sub f { my ($v, $d) = @_; defined $v ? sprintf("%.${d}f", $v) : '—' }

my $md = '';
$md .= "# Benchmarks\n\n";
$md .= "Written by `make bench` (`perl util/bench.pl`"
       . ($quick ? ' --quick' : '') . ") on " . strftime('%Y-%m-%d %H:%M UTC', gmtime) . ", commit $commit.\n\n";
$md .= "Machine: $machine.  Everything on this one machine, over loopback: the\n"
     . "load client, nginx (one worker), PostgreSQL and, for b, the Go service\n"
     . "share the CPUs.\n\n";
$md .= "PostgreSQL ran with its default durability (the tests' clusters do not):\n"
     . "$settings.\n\n";
$md .= "Set-ups, side by side, on one PostgreSQL with the same $NKEYS keys and the\n"
     . "project's schema (`pgauth.authorize()` records a session per publish):\n\n"
     . "- **a. no auth**: nginx-rtmp alone.\n"
     . "- **b. on_publish + Go service**: nginx-rtmp's `on_publish` (and\n"
     . "  `on_publish_done`) to `t/bench/authsvc`, Go net/http + lib/pq with a\n"
     . "  prepared statement and a pool of 8, calling the same `pgauth.authorize()`\n"
     . "  and answering 302 with the public name, or 403.\n"
     . "- **c. pgauth**: this module, default settings.\n"
     . "- **d. pgauth + cache**: this module with `pgauth_cache` (warmed).\n"
     . "- **e. on_publish + Go, plain lookup**: the usual small service this\n"
     . "  module replaces: the same Go service with `-plain`, one `SELECT` of the\n"
     . "  key (digest, app, enabled, expiry), no session recorded, nothing at\n"
     . "  the end.\n\n"
     . "The load client is `t/bench/loadc` (C, epoll, TCP_NODELAY): an attempt is\n"
     . "connect, handshake, `connect`, `createStream`, `publish`, until the\n"
     . "onStatus.  Unless said otherwise it runs with quick ACKs (`-q`), so the\n"
     . "figures are the decision's, not nginx-rtmp's Nagle wait (see Time to\n"
     . "live).\n\n";

$md .= "## Results\n\n";
$md .= "| | a. no auth | b. on_publish + Go | c. pgauth | d. pgauth + cache | e. on_publish + Go, plain lookup |\n|---|---|---|---|---|---|\n";
$md .= "| sequential p50 (ms) | " . join(' | ', map { f($seq{$_}{latency_start_ms}{p50}, 3) } qw(a b c d e)) . " |\n";
$md .= "| sequential p99 (ms) | " . join(' | ', map { f($seq{$_}{latency_start_ms}{p99}, 3) } qw(a b c d e)) . " |\n";
$md .= "| added over a, p50 (ms) | — | " . join(' | ', map { f($added{$_}{p50}, 3) } qw(b c d e)) . " |\n";
$md .= "| added over a, p99 (ms) | — | " . join(' | ', map { f($added{$_}{p99}, 3) } qw(b c d e)) . " |\n";
$md .= "| accepted publishes/s, $CONC concurrent | " . join(' | ', map { f($conc{$_}{start_per_s}, 0) } qw(a b c d e)) . " |\n";
$md .= "| ... of a | 100% | " . join(' | ', map { f(100 * $conc{$_}{start_per_s} / ($conc{a}{start_per_s} || 1), 0) . '%' } qw(b c d e)) . " |\n";
$md .= "| nginx worker CPU per publish (µs) | " . join(' | ', map { f($cpu{$_}, 0) } qw(a b c d e)) . " |\n";
$md .= "| ... added over a (µs) | — | " . join(' | ', map { f($cpu{$_} - $cpu{a}, 0) } qw(b c d e)) . " |\n";
$md .= "| PostgreSQL CPU per publish (µs) | — | " . join(' | ', map { f($pgcpu{$_}, 0) } qw(b c d e)) . " |\n";
$md .= "| the machine's CPU per publish (µs) | " . join(' | ', map { f($mcpu{$_}, 0) } qw(a b c d e)) . " |\n";
$md .= "| ... its CPUs' bound (publishes/s) | " . join(' | ', map { f($NCPU * 1e6 / ($mcpu{$_} || 1), 0) } qw(a b c d e)) . " |\n";
$md .= "| ... the CPUs busy | " . join(' | ', map { f(100 * $mutil{$_}, 0) . '%' } qw(a b c d e)) . " |\n";
$md .= "| PostgreSQL queries per publish | 0 | " . join(' | ', map { f($qpp{$_}, 2) } qw(b c d e)) . " |\n";
$md .= "| outcomes, sequential | " . join(' | ', map { "$seq{$_}{outcomes}{start} start" . ($seq{$_}{counted} - $seq{$_}{outcomes}{start} ? ", " . ($seq{$_}{counted} - $seq{$_}{outcomes}{start}) . " other" : '') } qw(a b c d e)) . " |\n";
$md .= "| outcomes, concurrent | " . join(' | ', map { "$conc{$_}{outcomes}{start} start" . ($conc{$_}{counted} - $conc{$_}{outcomes}{start} ? ", " . ($conc{$_}{counted} - $conc{$_}{outcomes}{start}) . " other" : '') } qw(a b c d e)) . " |\n";
$md .= "| cache hits not confirmed at once (queue full) | — | — | — | " . ($unconfirmed{d} // 0) . " | — |\n";
# the runs of each set-up, when there were several rounds
sub rounds_md {
    return '' if $ROUNDS < 2;
    my $md = "The set-ups ran in turn, $ROUNDS rounds: the latencies are"
             . " the medians of\nthe rounds' p50 and p99, what a set-up"
             . " adds over a the median of\nthe rounds' differences, the"
             . " rows from accepted publishes/s on each\nset-up's round of"
             . " median throughput, of these:\n\n";
    for my $w (qw(a b c d e)) {
        $md .= "- $label{$w}: "
               . join('; ', map { f($_->{conc}{start_per_s}, 0) . '/s, p50 '
                                  . f($_->{seq}{latency_start_ms}{p50}, 3)
                                  . ', p99 '
                                  . f($_->{seq}{latency_start_ms}{p99}, 3)
                                  . ' ms' } @{$round{$w}})
               . "\n";
    }
    return "$md\n";
}

$md .= "\nSequential: $SEQ_N publishes one after another.  Concurrent: $CONC\n"
     . "connections for ${CONC_SECS} s after 1 s of warm-up.  Worker CPU: utime + stime of\n"
     . "the one nginx worker over the concurrent run, divided by its attempts (10 ms\n"
     . "clock ticks); PostgreSQL CPU: the same of all its processes (backends, WAL\n"
     . "writer, checkpointer), the warm-up included in both.  The machine's\n"
     . "CPU: the busy time of all $NCPU CPUs (`/proc/stat`: every process, the load\n"
     . "client's and the Go service's included, and the kernel's loopback work)\n"
     . "over the same run, divided by its attempts; its CPUs' bound: their time\n"
     . "over that, what the set-up reaches with every CPU busy.  Queries:\n"
     . "`pg_stat_statements` calls of `authorize`, `take_over`, `check_sessions`\n"
     . "and `publish_done` (e: its lookup) per publish.\n\n"
     . rounds_md();

$md .= "### The load client's own ceiling\n\n"
     . "Against a (nginx-rtmp, no auth) the client used "
     . f($conc{a}{cpu_util} * 100, 0) . "% of a core ("
     . f($conc{a}{cpu_per_attempt_us}, 0) . " µs a publish, mostly kernel loopback work) for "
     . f($conc{a}{start_per_s}, 0) . " publishes/s.  On this 2-core machine the client and\n"
     . "nginx share the CPUs, so a is bounded by the machine, not by nginx-rtmp alone;\n"
     . "b, c and d share the same CPUs with PostgreSQL too.\n\n";

$md .= "## One at a time, spaced\n\n"
     . "The sequential figures above are back to back: the next publish comes\n"
     . "while the database still records the last one and its end, on the\n"
     . "same two CPUs.  Here $PACED_N publishes, one at a time, each $PACE ms after the\n"
     . "last one's answer (what a server sees that is not saturated by its own\n"
     . "publishes; loadc `-p $PACE`)"
     . ($ROUNDS > 1 ? ", $ROUNDS rounds of the set-ups in turn, the medians of\n"
                      . "their p50 and p99 and of each round's difference from a (" . join('; ', map { my $w = $_; "$w "
                            . join(', ', map { f($_->{latency_start_ms}{p50}, 3) . '/'
                                               . f($_->{latency_start_ms}{p99}, 3) }
                                         @{$paced_runs{$w}}) } qw(a c c0 cz d e))
                      . " ms)" : '')
     . ":\n\n"
     . "| | p50 (ms) | p99 (ms) | added over a, p50 | added over a, p99 |\n|---|---|---|---|---|\n"
     . join('', map { my $w = $_;
                      "| $label{$w} | " . f($paced{$w}{latency_start_ms}{p50}, 3) . " | "
                      . f($paced{$w}{latency_start_ms}{p99}, 3) . " | "
                      . ($w eq 'a' ? '— | — |' : f($padded{$w}{p50}, 3) . " | " . f($padded{$w}{p99}, 3) . " |")
                      . "\n" } qw(a c c0 cz d e))
     . "\n";

$md .= "## Sustained load\n\n"
     . "c at $CONC concurrent, $SUST_N runs of $SUST_SECS s in a row on one"
     . " nginx, on the table the\nruns above grew ($sust_rows[0] sessions"
     . " before, $sust_rows[1] after; autovacuum at\nPostgreSQL's"
     . " defaults):\n\n"
     . "| run | " . join(' | ', 1 .. $SUST_N) . " |\n|---"
     . ('|---' x $SUST_N) . "|\n"
     . "| publishes/s | " . join(' | ', map { f($_->[0], 0) } @sustained)
     . " |\n| PostgreSQL CPU per publish (µs) | "
     . join(' | ', map { f($_->[1], 0) } @sustained) . " |\n\n"
     . "The last run's throughput over the first's: "
     . f($sustained[-1][0] / ($sustained[0][0] || 1), 2) . ".\n\n";

$md .= "## Memory\n\n| | RSS before (kB) | RSS after (kB) | publishes |\n|---|---|---|---|\n";
for my $w (qw(c d)) {
    $md .= "| $label{$w} | $rss{$w}[0] | $rss{$w}[1] | $rss{$w}[2] |\n";
}
$md .= "\nThe nginx worker's VmRSS after 2,000 warm-up publishes and after "
     . "$RSS_N more ($CONC concurrent).\n\n";

$md .= "## Time to live, as clients see it\n\n"
     . "ffmpeg publishing (strace timestamps: its `connect()` to the onStatus\n"
     . "`NetStream.Publish.Start` arriving), and loadc without quick ACKs (a usual\n"
     . "Linux client with delayed ACKs), sequential:\n\n"
     . "| | ffmpeg median (ms) | ffmpeg worst (ms) | runs | loadc p50 (ms) | loadc p99 (ms) |\n|---|---|---|---|---|---|\n";
for my $l ('a. no auth (stock nginx-rtmp)', 'c. pgauth, pgauth_tcp_nodelay off',
           'c. pgauth (pgauth_tcp_nodelay on, the default)') {
    my $t = $ttl{$l};
    $md .= "| $l | " . f($t->[0], 1) . " | " . f($t->[1], 1) . " | $t->[2] | " . f($t->[3], 2) . " | " . f($t->[4], 2) . " |\n";
}
$md .= "\nnginx-rtmp answers `connect` with several small writes and leaves Nagle on:\n"
     . "the later ones wait for the client's delayed ACK (about 40 ms on Linux).\n"
     . "`pgauth_tcp_nodelay` (on by default) sets TCP_NODELAY once the handshake\n"
     . "is done.\n\n";

$md .= "## The event loop while PostgreSQL is stalled\n\n"
     . "c, one worker, one ffmpeg stream live with HLS, publishes arriving from\n"
     . "8 connections all along; PostgreSQL stopped (SIGSTOP) for 5 s while the\n"
     . "playlist is fetched every 10 ms:\n\n"
     . "| HTTP requests | worst HTTP latency (ms) | new HLS segments during the 5 s |\n|---|---|---|\n"
     . "| $probe{requests} | " . f($probe{worst_ms}, 1) . " | $probe{segments} |\n\n";

$md .= "## Where the module's time goes\n\n"
     . "callgrind (instructions, inclusive) per publish, nginx with the module,\n"
     . "sequential publishes:\n\n| function | instructions per publish |\n|---|---|\n$profile\n"
     . "The profile showed OpenSSL 3's implicit fetch of SHA-256 in `EVP_Digest`\n"
     . "costing about 10,000 instructions a publish, more than the hash; the\n"
     . "module now fetches it once per worker (the publish hook went from 17,300\n"
     . "to 7,400 instructions).  The rest is libpq and nginx-rtmp's own chain\n"
     . "(`next_publish` runs inside the decision handler).\n\n";

# targets: against e, the service this module replaces
my $p50_ok = third_of_e($added{c}{p50}, $added{e}{p50});
my $p99_ok = third_of_e($added{c}{p99}, $added{e}{p99});
my $x_e = $conc{c}{start_per_s} / ($conc{e}{start_per_s} || 1);
my $x_db = $dbcost{pgauth}{tps} / ($dbcost{pgauth_base}{tps} || 1);
my $tp = 100 * $conc{c}{start_per_s} / ($conc{a}{start_per_s} || 1);
my $tpd = 100 * $conc{d}{start_per_s} / ($conc{a}{start_per_s} || 1);
my $rss_ok = $rss{c}[1] <= $rss{c}[0] * 1.05 + 512;
$md .= "## Where PostgreSQL's time goes\n\n"
     . "c, sequential, `pg_stat_statements` with `track = all` (statements run\n"
     . "inside the functions included), mean execution time:\n\n"
     . "| µs | calls | statement |\n|---|---|---|\n"
     . join('', map { my @f = split /\|/, $_, 3; "| $f[0] | $f[1] | `$f[2]` |\n" } split /\n/, $server)
     . "\nb runs the same two functions for every publish, through an HTTP hop,\n"
     . "a Go handler and lib/pq.  What c adds over a is that database work plus\n"
     . "one loopback round trip to PostgreSQL; d takes the database off the path\n"
     . "(the authorization still runs, after the publish has started).\n\n";

$md .= "## The database's cost per publish\n\n"
     . "pgbench running the SQL the module sends per publish, $POOL clients as\n"
     . "the module's pool has connections, " . ($quick ? 3 : 10) . " s, on the same PostgreSQL, each\n"
     . "statement its own transaction, the digests of the $NKEYS keys: against the\n"
     . "schema before issue 13 ($BASE, in a database of its own), what that\n"
     . "module sent, `authorize()` then `publish_done()` for each publish;\n"
     . "against this schema, what this module sends, in the proportions of c's\n"
     . "concurrent run: decisions alone (`authorize()`, "
     . f(100 * ($dbcost{alone} // 1), 0) . "% of them) and in\n"
     . "batches of `authorize_many()` (" . f($dbcost{many}, 1) . " a batch on average), "
     . "`take_over()` after\n"
     . f(100 * ($dbcost{takeovers} // 0), 1) . "% of publishes, "
     . "`look_up()` before " . f(100 * ($dbcost{lookups} // 0), 1)
     . "% of them (`pgauth_lookup_first`),\n"
     . "and one `publish_done_many()` for as many ends as\n"
     . "it carried there on average (" . f($dbcost{batch}, 1) . ").  Three runs of each in turn, medians\n"
     . "(runs: before " . join(', ', map { f($_, 0) } @{$dbcost{pgauth_base}{runs}})
     . "; now " . join(', ', map { f($_, 0) } @{$dbcost{pgauth}{runs}}) . "):\n\n"
     . "| schema | publishes/s | PostgreSQL CPU per publish (µs) |\n|---|---|---|\n"
     . "| before ($BASE) | " . f($dbcost{pgauth_base}{tps}, 0) . " | " . f($dbcost{pgauth_base}{cpu}, 0) . " |\n"
     . "| now | " . f($dbcost{pgauth}{tps}, 0) . " | " . f($dbcost{pgauth}{cpu}, 0) . " |\n"
     . "| ratio | " . f($x_db, 2) . " | " . f($dbcost{pgauth}{cpu} / ($dbcost{pgauth_base}{cpu} || 1), 2) . " |\n\n";

$md .= "### A batch's decisions against recording their sessions\n\n"
     . "pgbench, $POOL clients, " . ($quick ? 3 : 8) . " s, three runs of each in turn, medians:"
     . " `authorize_many()`\nof $floor{k} keys (c's batches held "
     . f($dbcost{many}, 1) . " on average), against the least that records as\n"
     . "many sessions: one `INSERT` of them all from the keys' rows, committed\n"
     . "without waiting for the flush; each then ends them by\n"
     . "`publish_done_many()`, as nginx does (runs: batch "
     . join(', ', map { f($_, 0) } @{$floor{batch}{runs}}) . "; floor "
     . join(', ', map { f($_, 0) } @{$floor{floor}{runs}}) . "):\n\n"
     . "| | publishes/s | PostgreSQL CPU per publish (µs) |\n|---|---|---|\n"
     . "| a batch's decisions and ends | " . f($floor{batch}{tps}, 0) . " | " . f($floor{batch}{cpu}, 0) . " |\n"
     . "| recording as many sessions, and their ends | " . f($floor{floor}{tps}, 0) . " | " . f($floor{floor}{cpu}, 0) . " |\n\n"
     . "What the decision adds over the record (the keys read `FOR SHARE`,\n"
     . "the names' locks, the look for other live sessions of the names,\n"
     . "`decide()`'s statements for the batch) is "
     . f($floor{batch}{cpu} - $floor{floor}{cpu}, 0)
     . " µs of PostgreSQL's CPU a publish here.\n\n";

$md .= "## A year of history\n\n"
     . "What nginx runs on every publish, heartbeat and re-check, on the sessions\n"
     . "table as the runs above left it ($hist{rows0} rows) and with 1,000,000 ended\n"
     . "sessions more (`pgbench`, one client, " . ($quick ? 2 : 5) . " s each):\n\n"
     . "| | transactions/s, $hist{rows0} rows | transactions/s, $hist{rows1} rows | ratio |\n|---|---|---|---|\n"
     . join('', map { "| $_ | " . f($hist{before}{$_}, 0) . " | " . f($hist{after}{$_}, 0)
                      . " | " . f($hist{after}{$_} / ($hist{before}{$_} || 1), 2) . " |\n" }
                sort keys %{$hist{before}})
     . "\n`pgauth.purge_sessions('90 days')` then deleted $hist{purged} rows in "
     . f($hist{purge_s}, 1) . " s.\n\n";

$md .= "## 100,000 keys\n\n"
     . "c's batch of decisions (`authorize_many()` of 10 keys, then\n"
     . "`publish_done_many()` of their sessions; `pgbench`, one client, "
     . ($quick ? 2 : 5) . " s each)\n"
     . "with the $many{keys0} keys of the runs above and with 100,000 keys more:\n\n"
     . "| | publishes/s, $many{keys0} keys | publishes/s, $many{keys1} keys"
     . " | ratio |\n|---|---|---|---|\n"
     . "| a batch of 10 and its ends | " . f($many{before}, 0) . " | " . f($many{after}, 0)
     . " | " . f($many{after} / ($many{before} || 1), 2) . " |\n\n";

$md .= "## Against the targets\n\n"
     . "| target | measured | met |\n|---|---|---|\n"
     . "| c's added latency at most a third of e's, p50 | c " . f($added{c}{p50}, 3)
     . " ms vs e " . f($added{e}{p50}, 3) . " ms | " . $p50_ok . " |\n"
     . "| ... p99 | c " . f($added{c}{p99}, 3) . " ms vs e "
     . f($added{e}{p99}, 3) . " ms | " . $p99_ok . " |\n"
     . "| ... spaced $PACE ms apart, p50 | c " . f($padded{c}{p50}, 3) . " ms vs e "
     . f($padded{e}{p50}, 3) . " ms | " . $pp50_ok . " |\n"
     . "| ... spaced $PACE ms apart, p99 | c " . f($padded{c}{p99}, 3) . " ms vs e "
     . f($padded{e}{p99}, 3) . " ms | " . $pp99_ok . " |\n"
     . "| c's accepted publishes/s at $CONC concurrent at least 2x e's | " . f($conc{c}{start_per_s}, 0)
     . " vs " . f($conc{e}{start_per_s}, 0) . " (" . f($x_e, 2) . "x) | " . ($x_e >= 2 ? 'yes' : 'no') . " |\n"
     . "| the database's publishes/s at least 3x the schema before's | " . f($dbcost{pgauth}{tps}, 0)
     . " vs " . f($dbcost{pgauth_base}{tps}, 0) . " (" . f($x_db, 2) . "x) | " . ($x_db >= 3 ? 'yes' : 'no') . " |\n"
     . "| d (cache warmed) at least 90% of a's throughput | d " . f($tpd, 0) . "% (c " . f($tp, 0) . "%) | "
     . ($tpd >= 90 ? 'yes' : 'no') . " |\n"
     . "| no HTTP request slower than 20 ms during the stall | worst " . f($probe{worst_ms}, 1) . " ms | "
     . ($probe{worst_ms} <= 20 ? 'yes' : 'no') . " |\n"
     . "| RSS flat | " . "$rss{c}[0] → $rss{c}[1] kB over $rss{c}[2] publishes | " . ($rss_ok ? 'yes' : 'no') . " |\n\n";

# what the throughput target asks of the CPUs all set-ups share
$md .= "At $CONC concurrent the set-ups are bound by the $NCPU CPUs they share:"
     . " c used\n" . f($mcpu{c}, 0) . " µs of the machine's CPU a publish ("
     . f($pgcpu{c}, 0) . " of them PostgreSQL's), e " . f($mcpu{e}, 0)
     . " (PostgreSQL " . f($pgcpu{e}, 0) . ");\n"
     . "the CPUs were " . f(100 * $mutil{c}, 0) . "% and " . f(100 * $mutil{e}, 0)
     . "% busy.  Twice e's throughput asks c for at most\n"
     . "half of e's CPU a publish, " . f($mcpu{e} / 2, 0) . " µs, with the CPUs as busy;"
     . " a alone used " . f($mcpu{a}, 0) . ".\n\n";

# what the latency and cache targets ask, against what no query and no
# record can go under here
$md .= "A third of e's added latency, spaced $PACE ms apart, is "
     . f($padded{e}{p50} / 3, 3) . " ms at p50\nand "
     . f($padded{e}{p99} / 3, 3)
     . " at p99.  One round trip to PostgreSQL through the module, for a\n"
     . "statement that reads nothing (cz above: no key, no session, nothing"
     . " at\nthe end), added " . f($padded{cz}{p50}, 3) . " and "
     . f($padded{cz}{p99}, 3) . " ms"
     . ($padded{cz}{p50} > $padded{e}{p50} / 3
        ? ": at p50, a publish that waits for any\nanswer of the database"
          . " does not go under a third of e's on this machine;\nd, which"
          . " goes live without waiting, added " . f($padded{d}{p50}, 3)
          . " and " . f($padded{d}{p99}, 3) . " ms.\n\n"
        : ".\n\n")
     . "90% of a's throughput asks d for at most " . f($mcpu{a} / 0.9, 0)
     . " µs of the machine's CPU\na publish with the CPUs as busy, "
     . f($mcpu{a} / 0.9 - $mcpu{a}, 0) . " over a's; recording a session"
     . " and its end,\nand nothing else, cost PostgreSQL "
     . f($floor{floor}{cpu}, 0) . " µs a publish (pgbench, \"A\n"
     . "batch's decisions against recording their sessions\" above), and"
     . " d records\nevery session (`kick_stream()`, `live_sessions()` and"
     . " the takeover across\nworkers need it).\n\n";

# kept by hand, carried over from the last report
my ($steps) = (Pgauth::slurp($out) =~ /^(## What each step bought\n.*?)(?=^## |\z)/ms);
$md .= $steps if $steps;

$md .= "## The command\n\n```sh\nmake bench            # perl util/bench.pl --out docs/benchmarks.md\n"
     . "BENCH_ROUNDS=5 make bench   # rounds of the set-ups (3 by default)\n```\n\n"
     . "It needs golang-go and golang-github-lib-pq-dev (installed by `make bench`),\n"
     . "valgrind and strace.\n";

Pgauth::spew($out, $md);
print "bench: wrote $out\n";

kill 'TERM', @gopids;
waitpid $_, 0 for @gopids;
