package Pgauth;

# Test helpers for ngx_rtmp_pgauth: a throwaway PostgreSQL cluster, an nginx
# with the stock rtmp module and ours, real clients (ffmpeg, ffprobe and our
# RTMP client t/tools/rtmpc).  Everything listens on 127.0.0.1, on ports
# chosen free at run time.  Set PGAUTH_KEEP=1 to keep the temporary folders;
# PGAUTH_NGINX=/path/to/nginx to test another binary, with PGAUTH_STATIC=1 when the
# modules are built into it (--add-module).

use strict;
use warnings;

use Exporter 'import';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(free_port tmpdir rtmpc rtmpc_start ffmpeg_publish http_get
                 http_request
                 wait_for slurp spew need_tools need_browser median running $TOP
                 $RTMPC);

our $TOP = abs_path(dirname(__FILE__) . '/../..');
# PGAUTH_ASAN=1: the module of "VARIANT=asan util/build.sh", with nginx
# started with the sanitizer runtime preloaded
our $MODULE = $ENV{PGAUTH_MODULE}
              || ($ENV{PGAUTH_ASAN} ? "$TOP/objs/asan/ngx_rtmp_pgauth_module.so"
                                    : "$TOP/objs/ngx_rtmp_pgauth_module.so");
our $RTMP_MODULE = $ENV{NGX_RTMP_MODULE}
                   || '/usr/lib/nginx/modules/ngx_rtmp_module.so';
our $RTMPC = "$TOP/t/tools/rtmpc";
our $NGINX = $ENV{PGAUTH_NGINX} || '/usr/sbin/nginx';

# A port to listen on, below the ephemeral range: an outgoing connection
# of another test (a client, libpq) never takes it between this choice and
# the listen, as one of the kernel's own choices could be.
sub free_port {
    my ($low) = (Pgauth::slurp('/proc/sys/net/ipv4/ip_local_port_range') // '')
                =~ /^(\d+)/;
    $low = 32768 unless $low && $low > 12000;
    for (1 .. 100) {
        my $port = 10000 + int(rand($low - 10000));
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 1)
            or next;
        close $s;
        return $port;
    }
    die "free_port: no free port below $low";
}

sub tmpdir {
    my $dir = tempdir('pgauth-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{PGAUTH_KEEP});
    chmod 0755, $dir;
    return $dir;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $text = <$fh>;
    return defined $text ? $text : '';
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
}

# Polls $cond every 50 ms until it is true or $timeout seconds pass.
sub wait_for {
    my ($timeout, $cond) = @_;
    my $end = time + $timeout;
    while (time < $end) {
        my $r = $cond->();
        return $r if $r;
        sleep 0.05;
    }
    return $cond->();
}

# Skips the whole test file unless every tool is there.
# The browser tests: chromium (make test installs it; only where apt cannot
# is the test skipped), node and the npm modules of package-lock.json.
sub need_browser {
    require Test::More;
    Test::More::plan(skip_all => 'chromium is not installed and util/deps.sh '
                     . 'could not install it (apt-get install chromium): '
                     . 'no browser test')
        unless -x '/usr/bin/chromium';
    need_tools('node');
    for my $f ('node_modules/playwright-core/package.json',
               'node_modules/hls.js/dist/hls.min.js') {
        Test::More::BAIL_OUT("$f is missing: make test runs npm ci")
            unless -f "$TOP/$f";
    }
}

sub need_tools {
    for my $t (@_) {
        next if -x $t || grep { -x "$_/$t" } split /:/, $ENV{PATH};
        require Test::More;
        Test::More::plan(skip_all => "$t not found");
    }
}

# Runs our RTMP client: publish $name (or -x hex / -l len given in %o) to
# rtmp://127.0.0.1:$port/$app ($o{host} for another address, "[::1]" for
# IPv6; $o{from} binds the client's).  Returns a hash: exit, out (all lines),
# status (the last onStatus: level, code, desc, ms), closed (1 when the
# server closed), summary.
sub rtmpc {
    my ($port, $app, %o) = @_;
    my @args = ($RTMPC);
    push @args, '-n', $o{name} if defined $o{name};
    push @args, '-x', $o{hex} if defined $o{hex};
    push @args, '-l', $o{len} if defined $o{len};
    push @args, '-w', $o{hold} if defined $o{hold};
    push @args, '-W', $o{drop} if defined $o{drop};
    push @args, '-b', $o{from} if defined $o{from};
    push @args, '-F', $o{flood} if defined $o{flood};
    push @args, '-D' if $o{delayed_acks};
    push @args, '-t', $o{timeout} || 10000;
    push @args, 'rtmp://' . ($o{host} || '127.0.0.1') . ":$port/$app";

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        exec @args or die "exec $RTMPC: $!";
    }
    my $r = { out => [], statuses => [] };
    while (my $line = <$fh>) {
        chomp $line;
        push @{$r->{out}}, $line;
        if ($line =~ /^status ([\d.]+) (\S+) (\S+) ?(.*)$/) {
            my $st = { ms => $1, level => $2, code => $3, desc => $4 };
            push @{$r->{statuses}}, $st;
            $r->{status} = $st;
        } elsif ($line =~ /^closed ([\d.]+)/) {
            $r->{closed} = 1;
            $r->{closed_ms} = $1;
        } elsif ($line =~ /^summary /) {
            $r->{summary} = $line;
        }
    }
    close $fh;
    $r->{exit} = $? >> 8;
    $r->{status} ||= { level => '', code => '', desc => '', ms => -1 };
    return $r;
}

# Starts our RTMP client in the background, holding the publish for
# $o{hold} ms (default 60 s).  Returns a handle for Pgauth::Client.
sub rtmpc_start {
    my ($port, $app, %o) = @_;
    my @args = ($RTMPC, '-w', $o{hold} || 60000, '-t', ($o{hold} || 60000) + 5000);
    push @args, '-n', $o{name} if defined $o{name};
    push @args, "rtmp://127.0.0.1:$port/$app";
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        exec @args or die "exec $RTMPC: $!";
    }
    return bless { pid => $pid, fh => $fh, lines => [] }, 'Pgauth::Client';
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# Starts ffmpeg publishing a test pattern for $secs seconds to $url in the
# background; returns its pid.  stderr goes to $log when given.
sub ffmpeg_publish {
    my ($url, $secs, $log) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $log || '/dev/null';
        exec 'ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'info',
             '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
             '-f', 'lavfi', '-i', 'sine=frequency=440',
             '-t', $secs,
             '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency',
             '-g', '25', '-pix_fmt', 'yuv420p',
             '-c:a', 'aac', '-b:a', '64k',
             '-f', 'flv', $url
            or exit 127;
    }
    return $pid;
}

# Whether a child of ours (ffmpeg_publish) still runs.
sub running {
    my ($pid) = @_;
    return waitpid($pid, WNOHANG) == 0;
}

# A plain HTTP/1.0 GET.  Returns (status, body, seconds).
sub http_get {
    my ($port, $path) = @_;
    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or return (0, '', time - $t0);
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$s>;
    close $s;
    $resp = '' unless defined $resp;
    my ($status) = $resp =~ m{^HTTP/\S+ (\d+)};
    my ($body) = $resp =~ m{\r\n\r\n(.*)}s;
    return ($status || 0, defined $body ? $body : '', time - $t0);
}


# An HTTP/1.0 GET with headers of one's own ([name, value] pairs), from
# 127.0.0.1 or the loopback address of a first { from => ... }.  Returns
# { status, headers => { lowercase name => [values] }, body, seconds }.
sub http_request {
    my $o = ref $_[0] eq 'HASH' ? shift : {};
    my ($port, $path, @headers) = @_;
    my $t0 = time;
    my %r = (status => 0, headers => {}, body => '');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  LocalAddr => $o->{from} // '127.0.0.1',
                                  Proto => 'tcp', Timeout => 5)
        or return { %r, seconds => time - $t0 };
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n"
           . join('', map { "$_->[0]: $_->[1]\r\n" } @headers) . "\r\n";
    local $/;
    my $resp = <$s>;
    close $s;
    $resp = '' unless defined $resp;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    ($r{status}) = ($head // '') =~ m{^HTTP/\S+ (\d+)};
    $r{status} ||= 0;
    for my $l (split /\r\n/, $head // '') {
        push @{$r{headers}{lc $1}}, $2 if $l =~ /^([^:\s]+):\s*(.*)$/;
    }
    $r{body} = $body // '';
    $r{seconds} = time - $t0;
    return \%r;
}


# Servers still running when the test ends are stopped here, before
# File::Temp removes their folders (END blocks run last defined first).
our (@NGINX, @PG, @BOUNCERS);

END {
    my $status = $?;
    $_->stop for grep { defined } @NGINX;
    $_->stop for grep { defined && $_->{running} } @BOUNCERS;
    for my $pg (grep { defined } @PG) {
        $pg->cont;
        $pg->stop('immediate') if $pg->{running};
    }
    $? = $status;
}


package Pgauth::Client;

# A background rtmpc: lines are read as they come, each stamped with the
# wall-clock time it was read.

use strict;
use warnings;
use IO::Select;
use Time::HiRes qw(time);

# Waits up to $timeout seconds for a line matching $re; returns
# (line, time read) or () on timeout or end of output.  Reads with
# sysread: select() knows nothing of what a buffered readline holds.
sub wait_line {
    my ($self, $re, $timeout) = @_;
    for my $l (@{$self->{lines}}) {
        return @$l[0, 1] if !$l->[2] && $l->[0] =~ $re && ($l->[2] = 1);
    }
    my $sel = IO::Select->new($self->{fh});
    my $end = time + $timeout;
    $self->{buf} //= '';
    while (!$self->{eof}) {
        my $left = $end - time;
        last if $left <= 0;
        last unless $sel->can_read($left);
        my $n = sysread $self->{fh}, $self->{buf}, 65536, length $self->{buf};
        if (!$n) {
            $self->{eof} = 1;
        }
        my $now = time;
        my $found;
        while ($self->{buf} =~ s/^(.*?)\n//) {
            my $rec = [ $1, $now, 0 ];
            push @{$self->{lines}}, $rec;
            if (!$found && $rec->[0] =~ $re) {
                $rec->[2] = 1;
                $found = $rec;
            }
        }
        return @$found[0, 1] if $found;
    }
    return ();
}

sub alive {
    my ($self) = @_;
    return kill 0, $self->{pid};
}

# Whether the server has closed the client, now ($wait: within so many
# seconds) or before.
sub closed {
    my ($self, $wait) = @_;
    $self->wait_line(qr/^closed/, $wait || 0);
    return scalar grep { $_->[0] =~ /^closed/ } @{$self->{lines}};
}

sub stop {
    my ($self) = @_;
    kill 'TERM', $self->{pid};
    close $self->{fh};
}


package Pgauth::Psql;

# One database session kept open (DBD::Pg), to time statements: run()
# returns when the server has answered, that is after the COMMIT.

use strict;
use warnings;
use DBI;
use Time::HiRes qw(time);

sub new {
    my ($class, $pg) = @_;
    my $dbh = DBI->connect("dbi:Pg:dbname=pgauth;host=127.0.0.1;port=$pg->{port}",
                           'postgres', '', { AutoCommit => 1, RaiseError => 1,
                                             PrintError => 0 })
        or die "connect: $DBI::errstr";
    return bless { dbh => $dbh }, $class;
}

# Runs $sql; returns (first column of the first row, time sent, time the
# reply was complete).
sub run {
    my ($self, $sql) = @_;
    my $t0 = time;
    my ($v) = $self->{dbh}->selectrow_array($sql);
    return ($v, $t0, time);
}


package Pgauth::Pg;

# A throwaway PostgreSQL cluster with our schema loaded into database
# "pgauth" (schema => file: another version of it).  As root, the server
# runs as the "postgres" user.

use strict;
use warnings;
use Time::HiRes qw(sleep time);

sub bindir {
    for my $v (15, 16, 17, 14, 13) {
        return "/usr/lib/postgresql/$v/bin"
            if -x "/usr/lib/postgresql/$v/bin/postgres";
    }
    die "no PostgreSQL server binaries in /usr/lib/postgresql\n";
}

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{dir} ||= Pgauth::tmpdir();
    $self->{port} ||= Pgauth::free_port();
    $self->{bin} = bindir();
    $self->{data} = "$self->{dir}/pgdata";
    $self->{log} = "$self->{dir}/postgres.log";
    $self->{user} = $> == 0 ? 'postgres' : undef;

    if ($self->{user}) {
        system('chown', $self->{user}, $self->{dir}) == 0
            or die "chown $self->{dir}";
    }

    $self->as_user("$self->{bin}/initdb", '-D', $self->{data}, '-A', 'trust',
                   '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8',
                   '--no-sync', '--no-instructions')
        == 0 or die "initdb failed\n";

    Pgauth::spew("$self->{dir}/extra.conf", join '', map { "$_\n" }
                 @{$self->{conf} || []});
    open my $fh, '>>', "$self->{data}/postgresql.conf" or die;
    print $fh "include '$self->{dir}/extra.conf'\n";
    close $fh;

    push @Pgauth::PG, $self;
    Scalar::Util::weaken($Pgauth::PG[-1]);

    # a port free_port() found may be taken before PostgreSQL binds it (a
    # test running beside, its own choice): another one, unless the
    # caller named it
    for my $try (1 .. 5) {
        last if eval { $self->start; 1 };
        die $@ if $o{port} || $try == 5
                  || $@ !~ /could not bind .* Address already in use/;
        $self->{port} = Pgauth::free_port();
    }
    $self->psql_db('postgres', 'CREATE DATABASE pgauth');
    $self->load_schema;
    $self->psql("ALTER ROLE pgauth_nginx LOGIN");
    return $self;
}

sub as_user {
    my ($self, @cmd) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDOUT, '>>', "$self->{dir}/commands.log";
        open STDERR, '>&', \*STDOUT;
        if ($self->{user}) {
            exec 'runuser', '-u', $self->{user}, '--', @cmd;
        }
        exec @cmd;
        exit 127;
    }
    waitpid $pid, 0;
    return $?;
}

sub start {
    my ($self) = @_;
    # pg_ctl appends to the log: what this start wrote is after $from
    my $from = -s $self->{log} || 0;
    $self->as_user("$self->{bin}/pg_ctl", '-D', $self->{data}, '-l',
                   $self->{log}, '-w', '-t', '30', '-o',
                   "-p $self->{port} -k $self->{dir}"
                   . " -c listen_addresses=127.0.0.1"
                   # tests need no durability; benchmarks keep
                   # PostgreSQL's (durable => 1)
                   . ($self->{durable} ? ''
                      : " -c fsync=off -c synchronous_commit=off"
                        . " -c full_page_writes=off"),
                   'start') == 0
        or die "pg_ctl start failed: "
               . substr(Pgauth::slurp($self->{log}), $from);
    $self->{running} = 1;
}

sub stop {
    my ($self, $mode) = @_;
    $self->cont if $self->{stopped};
    $self->as_user("$self->{bin}/pg_ctl", '-D', $self->{data}, '-w', '-t',
                   '30', '-m', $mode || 'fast', 'stop');
    $self->{running} = 0;
}

sub pid {
    my ($self) = @_;
    my ($pid) = Pgauth::slurp("$self->{data}/postmaster.pid") =~ /^(\d+)/;
    return $pid;
}

# SIGSTOP / SIGCONT the whole server: a black-holed database.
sub freeze {
    my ($self) = @_;
    my $pid = $self->pid or die "no postmaster";
    my @pids = ($pid, $self->children($pid));
    kill 'STOP', @pids;
    $self->{stopped} = \@pids;
}

sub cont {
    my ($self) = @_;
    kill 'CONT', @{$self->{stopped}} if $self->{stopped};
    delete $self->{stopped};
}

sub children {
    my ($self, $ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = Pgauth::slurp($stat);
        push @kids, $1 if $s =~ /^(\d+) \(.*\) \S (\d+)/ && $2 == $ppid;
    }
    return @kids;
}

sub psql_db {
    my ($self, $db, $sql) = @_;
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
             '-h', '127.0.0.1', '-p', $self->{port}, '-U', 'postgres',
             '-d', $db, '-c', $sql;
        exit 127;
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    die "psql failed ($sql): $out" if $? && !$self->{may_fail};
    $out = '' unless defined $out;
    $out =~ s/\s+\z//;
    return $out;
}

sub psql {
    my ($self, $sql) = @_;
    return $self->psql_db('pgauth', $sql);
}

# Like psql but returns undef instead of dying.
sub try_psql {
    my ($self, $sql) = @_;
    local $self->{may_fail} = 1;
    return $self->psql($sql);
}

sub load_schema {
    my ($self, $file) = @_;
    $file ||= $self->{schema} || "$Pgauth::TOP/src/pgauth.sql";
    my $out = `psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $self->{port} -U postgres -d pgauth -f $file 2>&1`;
    die "schema failed: $out" if $?;
    return $out;
}

sub create_key {
    my ($self, $name, $app, $expires) = @_;
    my @args = ("'$name'");
    push @args, defined $app ? "'$app'" : "'live'";
    push @args, "'$expires'::interval" if defined $expires;
    return $self->psql("SELECT pgauth.create_key(" . join(', ', @args) . ")");
}

# The connection string nginx uses: the least-privileged role.
sub dsn {
    my ($self) = @_;
    return "host=127.0.0.1 port=$self->{port} dbname=pgauth user=pgauth_nginx";
}

# Backends of nginx's pools (by application_name), and of its LISTEN
# connections.
sub nginx_backends {
    my ($self) = @_;
    return $self->psql("SELECT count(*) FROM pg_stat_activity"
                       . " WHERE application_name = 'nginx-rtmp-pgauth'");
}

# Sessions open in the database, of one stream name or all.
sub open_sessions {
    my ($self, $name) = @_;
    return $self->psql("SELECT count(*) FROM pgauth.sessions"
                       . " WHERE ended_at IS NULL"
                       . (defined $name ? " AND stream_name = '$name'" : ''));
}

sub listen_backends {
    my ($self) = @_;
    return $self->psql("SELECT count(*) FROM pg_stat_activity"
                       . " WHERE application_name = 'nginx-rtmp-pgauth-listen'");
}

sub DESTROY {
    my ($self) = @_;
    return unless $self->{running} && -d $self->{data};
    $self->cont;
    $self->stop('immediate');
}



package Pgauth::Bouncer;

# Debian's pgbouncer in front of a Pgauth::Pg, in pool_mode "mode"
# (session, transaction), run as the cluster's user; pool => server
# connections per user and database.

use strict;
use warnings;
use Time::HiRes qw(sleep);

sub new {
    my ($class, %o) = @_;
    my $self = bless { pool => 2, %o }, $class;
    my $pg = $self->{pg};
    $self->{dir} = "$pg->{dir}/pgbouncer-" . ++$pg->{bouncers};
    $self->{port} = Pgauth::free_port();
    mkdir $self->{dir} or die "mkdir $self->{dir}: $!";
    # trust, as the cluster does; the users must still be listed
    Pgauth::spew("$self->{dir}/users.txt",
                 qq{"pgauth_nginx" ""\n"postgres" ""\n});
    Pgauth::spew("$self->{dir}/pgbouncer.ini", <<"EOF2");
[databases]
pgauth = host=127.0.0.1 port=$pg->{port} dbname=pgauth
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $self->{port}
unix_socket_dir =
auth_type = trust
auth_file = $self->{dir}/users.txt
pool_mode = $self->{mode}
default_pool_size = $self->{pool}
server_connect_timeout = 2
server_login_retry = 1
logfile = $self->{dir}/pgbouncer.log
pidfile = $self->{dir}/pgbouncer.pid
EOF2
    system('chown', '-R', $pg->{user}, $self->{dir}) == 0 or die 'chown'
        if $pg->{user};
    push @Pgauth::BOUNCERS, $self;
    Scalar::Util::weaken($Pgauth::BOUNCERS[-1]);
    $self->start;
    return $self;
}

sub start {
    my ($self) = @_;
    $self->{pg}->as_user('/usr/sbin/pgbouncer', '-d',
                         "$self->{dir}/pgbouncer.ini") == 0
        or die "pgbouncer failed: " . $self->log;
    Pgauth::wait_for(10, sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $self->{port}, Proto => 'tcp')
    }) or die "pgbouncer does not listen: " . $self->log;
    $self->{running} = 1;
}

sub stop {
    my ($self) = @_;
    my ($pid) = (Pgauth::slurp("$self->{dir}/pgbouncer.pid") // '')
                =~ /(\d+)/;
    # an outage: SIGTERM waits for the clients to go in 1.24 (trixie)
    if ($pid) {
        kill 'KILL', $pid;
        Pgauth::wait_for(10, sub { !kill 0, $pid });
    }
    unlink "$self->{dir}/pgbouncer.pid";
    $self->{running} = 0;
}

sub dsn {
    my ($self) = @_;
    return "host=127.0.0.1 port=$self->{port} dbname=pgauth user=pgauth_nginx";
}

sub log {
    my ($self) = @_;
    return Pgauth::slurp("$self->{dir}/pgbouncer.log") // '';
}

sub DESTROY {
    my ($self) = @_;
    $self->stop if $self->{running};
}

package Pgauth::Nginx;

# nginx started from a config text; %%NAME%% placeholders are replaced:
# RTMP_PORT, HTTP_PORT, DIR, HLS, DSN (when a pg is given).  module =>
# path: another build of ours.

use strict;
use warnings;
use Time::HiRes qw(sleep time);

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{dir} ||= Pgauth::tmpdir();
    $self->{rtmp_port} ||= Pgauth::free_port();
    $self->{http_port} ||= Pgauth::free_port();
    $self->{hls} = "$self->{dir}/hls";
    mkdir $self->{hls};
    mkdir "$self->{dir}/logs";
    $self->write_conf($o{conf});
    push @Pgauth::NGINX, $self;
    Scalar::Util::weaken($Pgauth::NGINX[-1]);
    $self->start unless $o{no_start};
    return $self;
}

# The stock Debian setup: the rtmp module, then ours; with the usual
# application "live" and an HTTP server for HLS and pgauth_status; main,
# rtmp, app and http (the server block) add lines, pgauth replaces "pgauth on;".
# Tests that need other blocks give their own text.
sub default_conf {
    my (%o) = @_;
    my $app = $o{app} || '';
    my $rtmp = $o{rtmp} || '';
    my $main = $o{main} || '';
    my $http = $o{http} || '';
    my $pgauth = exists $o{pgauth} ? $o{pgauth} : 'pgauth on;';
    return <<"EOF";
$main
events { worker_connections 1024; }

rtmp {
    pgauth_dsn "%%DSN%%";
    access_log %%DIR%%/logs/rtmp-access.log;
$rtmp
    server {
        listen 127.0.0.1:%%RTMP_PORT%%;

        application live {
            live on;
            $pgauth
            hls on;
            hls_path %%HLS%%;
            hls_fragment 1s;
            hls_playlist_length 6s;
$app
        }
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
        location /hls/ {
            alias %%HLS%%/;
            types {
                application/vnd.apple.mpegurl m3u8;
                video/mp2t ts;
            }
        }
        location = /ping { return 200 "pong\\n"; }
        location = /pgauth_status { pgauth_status; }
$http
    }
}
EOF
}

sub write_conf {
    my ($self, $conf) = @_;
    $conf = default_conf() unless defined $conf;
    my %v = (RTMP_PORT => $self->{rtmp_port}, HTTP_PORT => $self->{http_port},
             DIR => $self->{dir}, HLS => $self->{hls},
             DSN => $self->{pg} ? $self->{pg}->dsn : 'host=127.0.0.1');
    $conf =~ s/%%(\w+)%%/exists $v{$1} ? $v{$1} : die "no %%$1%%"/ge;
    # PGAUTH_STATIC=1 with PGAUTH_NGINX=/path: a binary built with --add-module
    # no_module: the stock nginx-rtmp alone (baselines)
    my $head = ($ENV{PGAUTH_STATIC} ? ''
                : "load_module $RTMP_MODULE;\n"
                  . ($self->{no_module} ? ''
                     : "load_module " . ($self->{module} || $MODULE) . ";\n"))
               . "pid $self->{dir}/logs/nginx.pid;\n"
               . "error_log $self->{dir}/logs/error.log "
               . ($self->{log_level} || 'info') . ";\n"
               . ($> == 0 ? "user root root;\n" : '')
               # a binary upgrade (USR2) starts the new nginx with only
               # these of the environment: the sanitizer must come along
               . ($ENV{PGAUTH_ASAN} ? "env LD_PRELOAD;\nenv ASAN_OPTIONS;\n" : '')
               . "worker_processes " . ($self->{workers} || 1) . ";\n";
    mkdir "$self->{dir}/tmp";
    Pgauth::spew("$self->{dir}/nginx.conf", $head . $conf);
}

our ($RTMP_MODULE, $MODULE, $NGINX);
*RTMP_MODULE = \$Pgauth::RTMP_MODULE;
*MODULE = \$Pgauth::MODULE;
*NGINX = \$Pgauth::NGINX;

# PGAUTH_ASAN=1: nginx runs with the sanitizer runtime preloaded, reports
# go to logs/asan.* and fail bad_lines()
sub sanitizer_env {
    my ($self) = @_;
    return () unless $ENV{PGAUTH_ASAN};
    my $lib = `gcc -print-file-name=libasan.so`;
    chomp $lib;
    return (LD_PRELOAD => $lib,
            ASAN_OPTIONS => "detect_leaks=0:log_path=$self->{dir}/logs/asan");
}

# nginx -t: returns (exit code, output).
sub check_conf {
    my ($self) = @_;
    local %ENV = (%ENV, $self->sanitizer_env);
    my $out = `$NGINX -t -p $self->{dir} -c $self->{dir}/nginx.conf 2>&1`;
    return ($? >> 8, $out);
}

sub start {
    my ($self) = @_;
    my ($rc, $out) = $self->check_conf;
    die "nginx -t failed:\n$out" if $rc;
    local %ENV = (%ENV, $self->sanitizer_env);
    system($NGINX, '-p', $self->{dir}, '-c', "$self->{dir}/nginx.conf") == 0
        or die "nginx failed to start: " . $self->error_log;
    $self->{running} = 1;
    my $port = $self->{rtmp_port};
    Pgauth::wait_for(10, sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Proto => 'tcp')
    }) or die "nginx does not listen on $port";
    my $want = $self->{workers} || 1;
    Pgauth::wait_for(10, sub { $self->worker_pids >= $want })
        or die "not all nginx workers started";
}

sub master_pid {
    my ($self) = @_;
    my ($pid) = Pgauth::slurp("$self->{dir}/logs/nginx.pid") =~ /^(\d+)/;
    return $pid;
}

sub worker_pids {
    my ($self) = @_;
    my $master = $self->master_pid or return ();
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = Pgauth::slurp($stat);
        next unless $s =~ /^(\d+) \(nginx\) \S (\d+)/ && $2 == $master;
        my $pid = $1;
        push @w, $pid
            if Pgauth::slurp("/proc/$pid/cmdline") =~ /worker process/;
    }
    return @w;
}

# Waits until every worker has a pool connection free: pgauth_lookup_first
# asks its lookup only then (right after start the pool may still be
# connecting).  Matches the workers' sockets (/proc) to the idle pooled
# backends' client ports.
sub pool_ready {
    my ($self, $timeout) = @_;
    my $pgport = $self->{pg}{port};
    return Pgauth::wait_for($timeout // 5, sub {
        my %ports;
        for my $l (split /\n/, Pgauth::slurp('/proc/net/tcp')) {
            my @f = split ' ', $l;
            next unless @f > 9 && $f[2] =~ /:([0-9A-F]{4})$/ && hex($1) == $pgport;
            $ports{$f[9]} = hex((split /:/, $f[1])[1]);
        }
        my %idle = map { $_ => 1 } split /\n/, $self->{pg}->psql(
            "SELECT client_port FROM pg_stat_activity"
            . " WHERE application_name = 'nginx-rtmp-pgauth' AND state = 'idle'");
        my @w = $self->worker_pids or return 0;
        for my $pid (@w) {
            my $n = 0;
            for my $fd (glob "/proc/$pid/fd/*") {
                my $t = readlink $fd // next;
                $n++ if $t =~ /^socket:\[(\d+)\]$/ && $ports{$1} && $idle{$ports{$1}};
            }
            return 0 unless $n;
        }
        return 1;
    });
}

# The master and every process it started (workers, cache manager).
sub all_pids {
    my ($self) = @_;
    my $master = $self->master_pid or return ();
    my @p = ($master);
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = Pgauth::slurp($stat);
        push @p, $1 if $s =~ /^(\d+) \(nginx\) \S (\d+)/ && $2 == $master;
    }
    return @p;
}

sub signal {
    my ($self, $sig) = @_;
    my $pid = $self->master_pid or return;
    kill $sig, $pid;
}

sub reload {
    my ($self) = @_;
    $self->signal('HUP');
}

sub stop {
    my ($self) = @_;
    return unless $self->{running};
    my $pid = $self->master_pid;
    if ($pid) {
        kill 'TERM', $pid;
        Pgauth::wait_for(10, sub { !kill 0, $pid });
        kill 'KILL', $pid if kill 0, $pid;
    }
    $self->{running} = 0;
}

sub error_log {
    my ($self) = @_;
    return Pgauth::slurp("$self->{dir}/logs/error.log");
}

# Lines of the error log that signal a defect: alerts, emergencies,
# crashes, sanitizer reports.
sub bad_lines {
    my ($self) = @_;
    my @asan = map { split /\n/, Pgauth::slurp($_) }
               glob "$self->{dir}/logs/asan.*";
    return @asan, grep { /\[(alert|emerg|crit)\]|exited on signal|AddressSanitizer|LeakSanitizer|runtime error/ }
           split /\n/, $self->error_log;
}

# The number of the newest segment in a stream's playlist, -1 for none.
sub last_segment {
    my ($self, $name) = @_;
    my @n = Pgauth::slurp("$self->{hls}/$name.m3u8")
            =~ /^\Q$name\E-(\d+)\.ts$/mg;
    return @n ? $n[-1] : -1;
}

sub hls_files {
    my ($self) = @_;
    opendir my $d, $self->{hls} or return ();
    my @f = sort grep { !/^\./ } readdir $d;
    closedir $d;
    return @f;
}

sub DESTROY {
    my ($self) = @_;
    $self->stop;
}

1;
