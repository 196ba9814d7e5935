#!/usr/bin/perl
# Soak test: many publish attempts against one nginx with our module, while
# the workers' memory, file descriptors and PostgreSQL backends are sampled.
#
#   perl util/soak.pl [--attempts N] [--workers W] [--out docs/soak.md]
#                     [--concurrency C] [--keys K] [--seed S] [--sample SECS]
#
# Starts a throwaway PostgreSQL (Pgauth::Pg) and nginx (Pgauth::Nginx,
# pgauth_pool_size 4, the default queue) with two applications: "live"
# (the default query) and "slow" (the same query plus pg_sleep(random() *
# 0.02), so clients can leave while a decision is really pending).  Then it
# runs N attempts, C at a time, each one t/tools/rtmpc process forked from a
# small IO::Select loop:
#
#   good   a valid key: must get NetStream.Publish.Start, then closes
#          (at once, or after holding the stream up to 300 ms)
#   bad    an unknown key: must get NetStream.Publish.Denied
#   drop   rtmpc -W 5: the client drops the connection 5 ms after sending
#          publish, whatever the answer (valid or unknown key)
#   kill   the client dies 2 to 40 ms after it was forked (valid or unknown
#          key): a timer armed before exec (SIGALRM, unhandled by rtmpc, so
#          it dies as with SIGKILL, but on time however busy this loop is),
#          with a SIGKILL 50 ms later as a backstop
#
# A key is used by one attempt at a time (a FIFO of keys per application),
# so takeovers happen only when a left client's session is still open.
# Every few seconds it samples, for each worker: VmRSS, the number of open
# fds and of those the connections to PostgreSQL; the backends of the pools
# and of the LISTEN connections; the open sessions; the attempts done.
#
# Verdict (exit 1 when any fails): every good/bad attempt got the right
# decision; a dropped or killed client that still saw a decision saw the
# right one; no [alert]/[crit]/[emerg] or "exited on signal" in the error
# log and the workers are the ones that started; no session left open after
# the settle time; RSS and fds end flat.  Flat: the idle sample at the end
# is compared with the idle sample taken after a warm-up (5% of the
# attempts, at least 200, then the clients drained and 2 s settle): RSS at
# most 10% above it, fds other than PostgreSQL connections at most 2 above
# it (pool connections are opened on demand and may legitimately differ).
#
# Writes a markdown report to --out (default docs/soak.md).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use IO::Select;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Pgauth;

my %opt = (attempts => 20000, workers => 2, out => "$TOP/docs/soak.md",
           concurrency => 32, keys => 64, seed => 1, sample => 3,
           settle => 5);
GetOptions(\%opt, 'attempts=i', 'workers=i', 'out=s', 'concurrency=i',
           'keys=i', 'seed=i', 'sample=f', 'settle=f')
    or die "usage: $0 [--attempts N] [--workers W] [--out FILE]"
         . " [--concurrency C] [--keys K] [--seed S] [--sample SECS]"
         . " [--settle SECS]\n";
die "--keys must be at least --concurrency\n" if $opt{keys} < $opt{concurrency};
my $command = join ' ', 'perl util/soak.pl', soak_args();

for my $t ($RTMPC, $Pgauth::MODULE) {
    die "$t not found: cd $TOP && make -s && make -s t/tools/rtmpc\n" unless -e $t;
}

srand $opt{seed};
$| = 1;
$SIG{PIPE} = 'IGNORE';

my $POOL = 4;
my $SLOW_QUERY = 'SELECT a.stream_name, a.session_id, a.valid_for'
               . ' FROM pgauth.authorize($1, $2, $3, $4, $5) a,'
               . ' pg_sleep(random() * 0.02)';

# what each attempt does, with weights
my @MIX = (
    [ 'good', 'live', 30 ], [ 'good', 'slow', 20 ],
    [ 'bad',  'live', 10 ], [ 'bad',  'slow', 10 ],
    [ 'drop', 'live',  3 ], [ 'drop', 'slow',  9 ],
    [ 'kill', 'live',  4 ], [ 'kill', 'slow', 14 ],
);
my $mix_total = 0;
$mix_total += $_->[2] for @MIX;

print "soak: $command\n";
# the module as loaded (others may rebuild it while this runs)
my ($module_sha) = `sha256sum $Pgauth::MODULE` =~ /^([0-9a-f]+)/;
my $module_time = POSIX::strftime('%Y-%m-%d %H:%M:%S', localtime((stat $Pgauth::MODULE)[9]));
my $pg = Pgauth::Pg->new;
my %keys;    # app => FIFO of [name, key]
for my $app ('live', 'slow') {
    my $p = substr $app, 0, 1;
    my @k = split /\n/, $pg->psql(
        "SELECT pgauth.create_key('$p' || g, '$app') FROM generate_series(1, $opt{keys}) g"
        . " ORDER BY g");
    die "create_key: got " . scalar(@k) . " keys" unless @k == $opt{keys};
    $keys{$app} = [ map { [ "$p" . ($_ + 1), $k[$_] ] } 0 .. $#k ];
}

my $conf = <<"EOF";
events { worker_connections 4096; }

rtmp {
    pgauth_dsn "%%DSN%%";
    pgauth_pool_size $POOL;
    access_log off;

    server {
        listen 127.0.0.1:%%RTMP_PORT%%;
        ping 0;

        application live {
            live on;
            pgauth on;
        }

        application slow {
            live on;
            pgauth on;
            pgauth_query "$SLOW_QUERY";
        }
    }
}
EOF
my $ng = Pgauth::Nginx->new(pg => $pg, workers => $opt{workers},
                            log_level => 'notice', conf => $conf);
my $port = $ng->{rtmp_port};
my @workers = sort { $a <=> $b } $ng->worker_pids;
die "expected $opt{workers} workers, found " . scalar(@workers) . "\n"
    unless @workers == $opt{workers};
print "nginx workers @workers, rtmp port $port, PostgreSQL port $pg->{port}\n";

my $t_start = time;
my (@samples, %outcome, %latency, @wrong, %later, $worker_change, %kill_sig);
my ($started, $done, %inflight) = (0, 0);
my $sel = IO::Select->new;

sub soak_args {
    my @a;
    for my $k (qw(attempts workers concurrency keys seed sample settle)) {
        push @a, "--$k $opt{$k}" if $opt{$k} != default_of($k);
    }
    push @a, "--out $opt{out}" if $opt{out} ne "$TOP/docs/soak.md";
    return @a;
}

sub default_of {
    my %d = (attempts => 20000, workers => 2, concurrency => 32, keys => 64,
             seed => 1, sample => 3, settle => 5);
    return $d{$_[0]};
}

sub pick_mix {
    my $r = rand $mix_total;
    for my $m (@MIX) {
        return @$m if ($r -= $m->[2]) < 0;
    }
    return @{$MIX[-1]};
}

sub start_attempt {
    my ($kind, $app) = pick_mix();
    my $a = { kind => $kind, app => $app, n => ++$started };
    # drop and kill: half with a valid key
    $a->{valid} = $kind eq 'good' || ($kind ne 'bad' && rand() < 0.5);
    my $name;
    if ($a->{valid}) {
        $a->{key} = shift @{$keys{$app}};
        $name = $a->{key}[1];
    } else {
        $name = sprintf 'bad-%08x%08x', int(rand 2**32), int(rand 2**32);
    }
    my @args = ($RTMPC, '-n', $name, '-t', 10000);
    if ($kind eq 'good') {
        push @args, '-w', rand() < 0.2 ? int(rand 300) : 0;
    } elsif ($kind eq 'drop') {
        push @args, '-W', 5;
    }
    push @args, "rtmp://127.0.0.1:$port/$app";

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    # kill: the child arms a timer before exec, so the signal comes on time
    # however busy this loop is (a fork takes ms here); rtmpc has no SIGALRM
    # handler, so it dies at once, like with SIGKILL.  This loop sends a
    # SIGKILL as well, a little later, should the timer not have done it.
    my $delay = $kind eq 'kill' ? (2 + rand 38) / 1000 : 0;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        Time::HiRes::setitimer(Time::HiRes::ITIMER_REAL(), $delay) if $delay;
        exec @args or POSIX::_exit(127);
    }
    $a->{t0} = time;
    $a->{pid} = $pid;
    $a->{fh} = $fh;
    $a->{buf} = '';
    $a->{kill_at} = $a->{t0} + $delay + 0.05 if $delay;
    $inflight{fileno $fh} = $a;
    $sel->add($fh);
}

sub finish_attempt {
    my ($a) = @_;
    $sel->remove($a->{fh});
    delete $inflight{fileno $a->{fh}};
    close $a->{fh};
    my $status = $?;
    my ($exit, $sig) = ($status >> 8, $status & 127);
    $done++;
    push @{$keys{$a->{app}}}, $a->{key} if $a->{key};

    my (@st, $timeout, $closed);
    for my $line (split /\n/, $a->{buf}) {
        if ($line =~ /^status ([\d.]+) (\S+) (\S+)/) {
            push @st, [ $1, $2, $3 ];
        } elsif ($line =~ /^timeout /) {
            $timeout = 1;
        } elsif ($line =~ /^closed /) {
            $closed = 1;
        }
    }
    # the decision: the first Publish.Start or error status
    my ($dec) = grep { $_->[2] eq 'NetStream.Publish.Start' || $_->[1] eq 'error' } @st;
    my $code = $dec ? $dec->[2] : $timeout ? 'timeout' : 'none';
    (my $short = $code) =~ s/^NetStream\.Publish\.//;
    my $want = $a->{valid} ? 'NetStream.Publish.Start' : 'NetStream.Publish.Denied';
    my $class = "$a->{kind} $a->{app}"
              . ($a->{kind} =~ /^(drop|kill)$/ ? ($a->{valid} ? ' valid' : ' unknown') : '');

    if ($a->{kind} eq 'kill') {
        $kill_sig{$sig}++;
        my $how = $sig ? 'killed' : 'finished before the kill';
        # how far it got: rtmpc's stdout is line buffered, publish is sent
        # right after the createStream result (transaction 4) is printed
        my $phase = $a->{buf} =~ /^result \S+ 4 /m ? 'publish sent'
                  : $a->{buf} =~ /^(connected|handshake|result) /m ? 'before publish'
                  : 'before connecting';
        $outcome{$class}{$dec ? "$how, $short" : "$how, no decision, $phase"}++;
        push @wrong, "#$a->{n} $class: $code" if $dec && $code ne $want;
    } elsif ($a->{kind} eq 'drop') {
        $outcome{$class}{$dec ? "decided before the drop, $short" : 'dropped, no decision'}++;
        push @wrong, "#$a->{n} $class: $code" if $dec && $code ne $want;
    } else {
        $outcome{$class}{$short}++;
        if ($code ne $want) {
            my $out = $a->{buf};
            $out =~ s/\n/ | /g;
            push @wrong, "#$a->{n} $class: $code (exit $exit; $out)";
        }
        if ($dec) {
            push @{$latency{$a->{app}}}, $dec->[0];
            # anything after the decision (a takeover, a late refusal)
            for my $s (@st) {
                next if $s == $dec;
                $later{"$class: $s->[2] after $short"}++;
            }
        }
    }
}

# --- sampling ----------------------------------------------------------

# inodes of TCP sockets connected to PostgreSQL's port
sub pg_socket_inodes {
    my %ino;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        while (<$fh>) {
            my @f = split;
            next unless @f > 9 && $f[2] =~ /:([0-9A-F]{4})$/;
            $ino{$f[9]} = 1 if hex($1) == $pg->{port};
        }
    }
    return \%ino;
}

sub proc_sample {
    my ($pid, $pgino) = @_;
    my ($rss) = Pgauth::slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)/m;
    my ($fds, $pgc) = (0, 0);
    if (opendir my $d, "/proc/$pid/fd") {
        for my $e (readdir $d) {
            next if $e =~ /^\./;
            $fds++;
            my $l = readlink "/proc/$pid/fd/$e";
            $pgc++ if defined $l && $l =~ /^socket:\[(\d+)\]/ && $pgino->{$1};
        }
        closedir $d;
    }
    return { rss => $rss, fds => $fds, pg => $pgc };
}

sub take_sample {
    my ($label) = @_;
    my $pgino = pg_socket_inodes();
    my @now = sort { $a <=> $b } $ng->worker_pids;
    if ("@now" ne "@workers") {
        $worker_change ||= "workers were @workers, now @now";
    }
    my %w = map { $_ => proc_sample($_, $pgino) } @workers;
    my $s = { t => time - $t_start, done => $done, inflight => scalar keys %inflight,
              w => \%w, label => $label || '',
              pool => $pg->nginx_backends, listen => $pg->listen_backends,
              open => $pg->psql("SELECT count(*) FROM pgauth.sessions WHERE ended_at IS NULL") };
    push @samples, $s;
    printf "%7.1fs %6d done %3d in flight  %s  backends %d+%d  open sessions %d%s\n",
        $s->{t}, $done, $s->{inflight},
        join('  ', map { "w$_: " . ($w{$_}{rss} // '-') . " kB $w{$_}{fds} fds ($w{$_}{pg} pg)" } @workers),
        $s->{pool}, $s->{listen}, $s->{open}, $label ? "  [$label]" : '';
    return $s;
}

# --- the run -----------------------------------------------------------

my $warmup = int($opt{attempts} * 0.05);
$warmup = 200 if $warmup < 200;
$warmup = $opt{attempts} if $warmup > $opt{attempts};
my ($baseline, $final);
my $next_sample = time;
take_sample('start');
$next_sample = time + $opt{sample};

my ($busy, $busy_time, $last_t) = (0, 0, 0);
sub run_until {
    my ($limit) = @_;
    my $t_run = $last_t = time;
    my $prev = keys %inflight;
    while ($done < $limit) {
        while (keys %inflight < $opt{concurrency} && $started < $limit) {
            start_attempt();
        }
        my $now = time;
        my $wait = $next_sample - $now;
        for my $a (values %inflight) {
            next unless $a->{kill_at} && !$a->{killed};
            my $d = $a->{kill_at} - $now;
            $wait = $d if $d < $wait;
        }
        $wait = 0 if $wait < 0;
        $wait = 0.5 if $wait > 0.5;
        my $before = keys %inflight;
        # refilled from $prev to $before since $last_t: count the mean
        $busy += ($now - $last_t) * ($prev + $before) / 2;
        $last_t = $now;
        for my $fh ($sel->can_read($wait)) {
            my $a = $inflight{fileno $fh} or next;
            my $n = sysread $fh, $a->{buf}, 65536, length $a->{buf};
            finish_attempt($a) unless $n;
        }
        $now = time;
        $busy += ($now - $last_t) * $before;
        $last_t = $now;
        $prev = keys %inflight;
        for my $a (values %inflight) {
            if ($a->{kill_at} && !$a->{killed} && $now >= $a->{kill_at}) {
                kill 'KILL', $a->{pid};
                $a->{killed} = $now;
            }
        }
        if ($now >= $next_sample) {
            take_sample();
            $next_sample = time + $opt{sample};
        }
    }
    $busy_time += time - $t_run;
}

run_until($warmup);
sleep 2;
$baseline = take_sample('idle after warm-up');
$next_sample = time + $opt{sample};
my $t_load = time;
run_until($opt{attempts});
my $t_end = time;
sleep $opt{settle};
$final = take_sample("idle, $opt{settle} s after the last attempt");
my $open_sessions = $final->{open};
my $duration = $t_end - $t_start;

my $errlog_size = -s "$ng->{dir}/logs/error.log";
my @bad = $ng->bad_lines;

# the error log, summarized: pgauth decisions and anything else at
# warn or above, with the variable parts taken out
my (%logsum);
{
    open my $fh, '<', "$ng->{dir}/logs/error.log" or die;
    while (my $l = <$fh>) {
        my ($lvl) = $l =~ /\[(\w+)\]/ or next;
        my $m = $l;
        $m =~ s/^\S+ \S+ \[\w+\] \d+#\d+: (\*\d+ )?//;
        $m =~ s/, client: .*//s;
        $m =~ s/\s+\z//;
        if ($m =~ /^pgauth: (allowed|refused|ended|late reply)/) {
            my $k = "pgauth: $1";
            $k .= " app=$1" if $m =~ /app="(\w+)"/;
            $k .= " reason=\"$1\"" if $m =~ /reason="([^"]*)"/;
            $logsum{"[$lvl] $k"}++;
        } else {
            $m =~ s/\b\d+\b/N/g;
            $m =~ s/"[0-9a-f]{16,}"/"KEY"/g;
            $logsum{"[$lvl] $m"}++;
        }
    }
}

$ng->stop;

# --- verdict -------------------------------------------------------------

my @fail;
push @fail, scalar(@wrong) . " wrong decision(s)" if @wrong;
push @fail, scalar(@bad) . " alert/crit/emerg/crash line(s) in the error log" if @bad;
push @fail, $worker_change if $worker_change;
push @fail, "$open_sessions session(s) left open" if $open_sessions;

my (@flat, %stats);
for my $w (@workers) {
    my @s = grep { defined $_->{w}{$w}{rss} } @samples;
    my $st = $stats{$w} = {
        first_rss => $s[0]{w}{$w}{rss}, first_fds => $s[0]{w}{$w}{fds},
        base_rss => $baseline->{w}{$w}{rss}, base_fds => $baseline->{w}{$w}{fds},
        base_pg => $baseline->{w}{$w}{pg},
        last_rss => $final->{w}{$w}{rss}, last_fds => $final->{w}{$w}{fds},
        last_pg => $final->{w}{$w}{pg},
    };
    $st->{max_rss} = (sort { $b <=> $a } map { $_->{w}{$w}{rss} } @s)[0];
    $st->{max_fds} = (sort { $b <=> $a } map { $_->{w}{$w}{fds} } @s)[0];
    if (!defined $st->{last_rss} || !defined $st->{base_rss}) {
        push @fail, "worker $w: gone before the end";
        next;
    }
    my $rss_ok = $st->{last_rss} <= $st->{base_rss} * 1.10;
    my $fds_ok = ($st->{last_fds} - $st->{last_pg}) <= ($st->{base_fds} - $st->{base_pg}) + 2;
    push @fail, "worker $w: RSS grew from $st->{base_rss} to $st->{last_rss} kB" unless $rss_ok;
    push @fail, "worker $w: fds grew from $st->{base_fds} ($st->{base_pg} pg) to"
              . " $st->{last_fds} ($st->{last_pg} pg)" unless $fds_ok;
    $st->{flat} = $rss_ok && $fds_ok;
}
my $max_pool = (sort { $b <=> $a } map { $_->{pool} } @samples)[0];
my $max_listen = (sort { $b <=> $a } map { $_->{listen} } @samples)[0];
my $max_open = (sort { $b <=> $a } map { $_->{open} } @samples)[0];
push @fail, "pool backends reached $max_pool (limit " . $POOL * $opt{workers} . ")"
    if $max_pool > $POOL * $opt{workers};

# --- report ----------------------------------------------------------------

sub cmd1 { my $o = `$_[0] 2>&1`; $o =~ s/\s+\z//; $o =~ s/\n/ /g; return $o }
my ($cpu) = Pgauth::slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m;
my ($mem) = Pgauth::slurp('/proc/meminfo') =~ /^MemTotal:\s+(\d+)/m;
my $nginx_v = cmd1("$Pgauth::NGINX -v");
$nginx_v =~ s{^nginx version: nginx/}{};
my $pg_v = $pg->psql('SHOW server_version');
my $session_ends = $pg->psql("SELECT app || ' ' || coalesce(end_reason, '(open)') || ': ' || count(*)"
    . " FROM pgauth.sessions GROUP BY app, end_reason ORDER BY 1");
$pg->stop;
my $git = cmd1("cd $TOP && git rev-parse --short HEAD");
my $dirty = cmd1("cd $TOP && git status --porcelain -- src config | wc -l");
$git .= " (src/ or config modified in the work tree)" if $dirty;
$git .= ", `" . ($Pgauth::MODULE =~ s{^\Q$TOP/\E}{}r) . "` sha256 "
      . substr($module_sha, 0, 12) . " built $module_time";

sub pct {
    my ($p, @v) = @_;
    return '-' unless @v;
    @v = sort { $a <=> $b } @v;
    my $i = int($p / 100 * $#v + 0.5);
    return $v[$i];
}

my $r = '';
$r .= "# Soak test\n\n";
$r .= "Generated by `util/soak.pl`; see the comment at its top for what it does.\n\n";
$r .= "## Run\n\n";
$r .= "| | |\n|---|---|\n";
$r .= "| command | `$command` |\n";
$r .= "| verdict | " . (@fail ? "**FAIL**: " . join('; ', @fail) : '**PASS**') . " |\n";
$r .= "| date | " . scalar(localtime $t_start) . " |\n";
$r .= "| machine | " . cmd1('nproc') . " CPUs ($cpu), " . sprintf('%.1f', $mem / 1048576)
    . " GiB, Linux " . cmd1('uname -r') . " |\n";
$r .= "| software | nginx $nginx_v, PostgreSQL $pg_v, module at commit $git |\n";
$r .= "| nginx | $opt{workers} workers, pgauth_pool_size $POOL, default pgauth_queue_size (64), default pgauth_timeout (3s), error_log notice |\n";
$r .= sprintf "| load | $opt{attempts} attempts, up to $opt{concurrency} clients at a time (%.1f on average, time-weighted: a fork takes milliseconds here, so slots are refilled with a delay), $opt{keys} keys per application, seed $opt{seed} |\n", $busy / $busy_time;
$r .= sprintf "| duration | %.1f s of attempts (%.0f attempts/s), then %g s settle |\n",
    $duration, $opt{attempts} / $duration, $opt{settle};
$r .= "| applications | `live`: the default query; `slow`: `$SLOW_QUERY` |\n";
$r .= "\n";

$r .= "## Attempts per outcome\n\n";
$r .= "Mix (weights): " . join(', ', map { "$_->[0] $_->[1] $_->[2]" } @MIX)
    . ". good: publish, expect NetStream.Publish.Start, close at once or after"
    . " holding up to 300 ms; bad: unknown key, expect NetStream.Publish.Denied;"
    . " drop: `rtmpc -W 5` (drops 5 ms after sending publish); kill: the client"
    . " dies 2-40 ms after it was forked (an ITIMER_REAL armed before exec:"
    . " SIGALRM, which rtmpc does not handle, so it dies like with SIGKILL;"
    . " SIGKILL 50 ms later as a backstop).  Drop and kill use a valid key half of"
    . " the time; when such a client still saw a decision it must be the right"
    . " one.\n\n";
$r .= "| attempt | outcome | count |\n|---|---|---:|\n";
for my $c (sort keys %outcome) {
    for my $o (sort keys %{$outcome{$c}}) {
        $r .= "| $c | $o | $outcome{$c}{$o} |\n";
    }
}
$r .= "\n";
if (%later) {
    $r .= "Statuses after the decision:\n\n";
    $r .= "- $_: $later{$_}\n" for sort keys %later;
    $r .= "\n";
}
$r .= "Sessions in the database at the end, by application and end reason:"
    . " " . join(', ', split /\n/, $session_ends) . ".\n\n";
$r .= "Wrong decisions: " . scalar(@wrong) . ".\n";
if (@wrong) {
    $r .= "\n```\n" . join("\n", @wrong[0 .. ($#wrong < 29 ? $#wrong : 29)]) . "\n```\n";
    $r .= "(first 30 of " . scalar(@wrong) . ")\n" if @wrong > 30;
}
$r .= "\nDecision time seen by the client (ms from TCP connect to the onStatus,"
    . " good and bad attempts):\n\n";
$r .= "| application | decisions | median | p99 | max |\n|---|---:|---:|---:|---:|\n";
for my $app (sort keys %latency) {
    my @v = @{$latency{$app}};
    $r .= "| $app | " . scalar(@v) . " | " . pct(50, @v) . " | " . pct(99, @v)
        . " | " . pct(100, @v) . " |\n";
}
$r .= "\n";
my $kt = "Kill signals: " . join(', ', map { ($_ == 14 ? 'SIGALRM (the timer)' : $_ == 9 ? 'SIGKILL (the backstop)' : $_ ? "signal $_" : 'none (finished first)') . " $kill_sig{$_}" } sort { $a <=> $b } keys %kill_sig) . ".";
print "$kt\n";
$r .= "$kt\n\n";

$r .= "## Error log\n\n";
$r .= sprintf "%.1f MB at notice.  [alert]/[crit]/[emerg]/\"exited on signal\" lines: %d.\n\n",
    ($errlog_size || 0) / 1e6, scalar @bad;
if (@bad) {
    $r .= "```\n" . join("\n", @bad[0 .. ($#bad < 19 ? $#bad : 19)]) . "\n```\n\n";
}
$r .= "| line (variable parts removed) | count |\n|---|---:|\n";
for my $k (sort { $logsum{$b} <=> $logsum{$a} || $a cmp $b } keys %logsum) {
    (my $kk = $k) =~ s/\|/\\|/g;
    $r .= "| `$kk` | $logsum{$k} |\n";
}
$r .= "\n";

$r .= "## Workers: memory and file descriptors\n\n";
$r .= "Sampled every $opt{sample} s from /proc/PID/status (VmRSS) and /proc/PID/fd;"
    . " \"pg\" is how many of the fds are TCP connections to PostgreSQL (pool and"
    . " LISTEN).  Backends: pool / LISTEN connections in pg_stat_activity"
    . " (application_name nginx-rtmp-pgauth / nginx-rtmp-pgauth-listen), all workers.\n\n";
my @wh = map { "w$_ RSS kB | w$_ fds (pg)" } @workers;
$r .= "| t (s) | done | in flight | " . join(' | ', @wh)
    . " | backends pool | LISTEN | open sessions | |\n";
$r .= "|" . join('|', ('---:') x (6 + 2 * @workers)) . "|---|\n";
# thin to about 20 rows, always keeping the first, the labelled and the last
my %keep = map { $_ => 1 } 0, $#samples,
           grep { $samples[$_]{label} } 0 .. $#samples;
my $step = @samples / 20;
$step = 1 if $step < 1;
for (my $i = 0; $i < @samples; $i += $step) { $keep{int $i} = 1 }
for my $i (sort { $a <=> $b } keys %keep) {
    my $s = $samples[$i];
    $r .= sprintf "| %.1f | %d | %d | %s | %d | %d | %d | %s |\n",
        $s->{t}, $s->{done}, $s->{inflight},
        join(' | ', map { ($s->{w}{$_}{rss} // '-') . " | $s->{w}{$_}{fds} ($s->{w}{$_}{pg})" } @workers),
        $s->{pool}, $s->{listen}, $s->{open}, $s->{label};
}
$r .= "\n" . scalar(@samples) . " samples in all, " . scalar(keys %keep)
    . " shown.  Max backends: pool $max_pool (limit $POOL x $opt{workers} = "
    . $POOL * $opt{workers} . "), LISTEN $max_listen; max open sessions in a sample: $max_open;"
    . " open sessions at the end: $open_sessions.\n\n";

$r .= "| worker | RSS kB first / after warm-up / max / last | fds first / after warm-up / max / last | flat |\n";
$r .= "|---|---|---|---|\n";
for my $w (@workers) {
    my $st = $stats{$w};
    $r .= sprintf "| %d | %s / %s / %s / %s | %s / %s (%s pg) / %s / %s (%s pg) | %s |\n", $w,
        map({ $_ // '-' } @$st{qw(first_rss base_rss max_rss last_rss first_fds base_fds base_pg max_fds last_fds last_pg)}),
        $st->{flat} ? 'yes' : '**no**';
}
$r .= "\nFlat means: the idle sample at the end (all clients gone, $opt{settle} s"
    . " settle) against the idle sample after the warm-up ($warmup attempts,"
    . " clients drained, 2 s settle): RSS at most 10% above it, and fds other than"
    . " PostgreSQL connections at most 2 above it (pool connections are opened on"
    . " demand, up to $POOL per worker, so their number may differ).  \"first\" is"
    . " before any attempt; max is over all samples, with clients connected.\n";

$r .= "\n## Verdict\n\n" . (@fail ? "FAIL:\n\n" . join('', map { "- $_\n" } @fail)
                                   : "PASS: every decision right, no alert or crash,"
                                     . " no session left open, RSS and fds flat.\n");

if ($opt{out} ne '-') {
    Pgauth::spew($opt{out}, $r);
    print "report: $opt{out}\n";
} else {
    print $r;
}
printf "%s in %.1f s\n", @fail ? "FAIL: " . join('; ', @fail) : 'PASS', $duration;
exit(@fail ? 1 : 0);
