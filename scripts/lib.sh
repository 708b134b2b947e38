# Shell helpers shared by scripts/e2e-deps.sh and scripts/bench-deps.sh:
# Debian packages installed from apt, or extracted and never installed.
# Sourced, not run. The caller sets TAG (the prefix of its messages) and
# runs as root.

# installed PKG: whether dpkg has PKG installed.
installed() {
	local st
	st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
	[ "$st" = "install ok installed" ]
}

# apt_update runs `apt-get update` once per script.
apt_updated=""
apt_update() {
	[ -n "$apt_updated" ] && return 0
	apt-get update -qq
	apt_updated=1
}

# any_missing PKG...: whether one of PKG is not installed.
any_missing() {
	local p
	for p in "$@"; do installed "$p" || return 0; done
	return 1
}

# install_missing PKG...: installs those of PKG that are not installed,
# without recommends (cron and mailutils recommend an MTA).
install_missing() {
	local p missing=""
	for p in "$@"; do installed "$p" || missing="$missing $p"; done
	[ -n "$missing" ] || return 0
	echo "$TAG: installing$missing"
	apt_update
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# without_service_starts CMD...: runs CMD under a policy-rc.d that forbids
# starting services, so that installing cron or dovecot does not leave a
# system daemon running; an existing policy-rc.d is put back afterwards.
without_service_starts() {
	local prc=/usr/sbin/policy-rc.d backup="" rc=0
	if [ -e "$prc" ] || [ -L "$prc" ]; then
		backup=$(mktemp /usr/sbin/.policy-rc.d.relaymail.XXXXXX)
		cp -a "$prc" "$backup"
	fi
	printf '#!/bin/sh\n# written by relaymail scripts/lib.sh for the duration of an install\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	"$@" || rc=$?
	if [ -n "$backup" ]; then mv -f "$backup" "$prc"; else rm -f "$prc"; fi
	return "$rc"
}

# extract_deb PKG DIR: `apt-get download` + `dpkg -x` of PKG into DIR/root,
# with its Depends in DIR/depends and its Version in DIR/version (written
# last: its presence says the extraction is complete). Never installs.
# Returns 1 when apt does not have PKG; exits on any other failure (errexit
# does not hold inside a function called from an if).
extract_deb() {
	local pkg=$1 dir=$2 tmp deb
	echo "$TAG: extracting $pkg into $dir/root"
	mkdir -p "$dir"
	tmp=$(mktemp -d "$dir/.dl.XXXXXX")
	# apt-get download runs as _apt when it can write the directory.
	chmod 755 "$tmp"
	chown _apt "$tmp" 2>/dev/null || true
	if ! (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null); then
		apt_update
		if ! (cd "$tmp" && apt-get download -qq "$pkg"); then
			rm -rf "$tmp"
			return 1
		fi
	fi
	{
		deb=$(ls "$tmp"/*.deb) &&
			dpkg-deb -f "$deb" Depends >"$tmp/depends" &&
			dpkg-deb -f "$deb" Version >"$tmp/version" &&
			dpkg -x "$deb" "$tmp/root" &&
			rm -rf "$dir/root" "$dir/version" &&
			mv "$tmp/root" "$dir/root" &&
			mv "$tmp/depends" "$dir/depends" &&
			mv "$tmp/version" "$dir/version" &&
			rm -rf "$tmp"
	} || {
		echo "$TAG: cannot extract $pkg into $dir (see above)" >&2
		exit 1
	}
}

# install_libs_of DIR: installs the libraries among the Depends of a
# package extracted by extract_deb that are missing: what `apt-get install`
# of the package would have pulled in for its binaries to run.
install_libs_of() {
	local libs
	libs=$(tr ',' '\n' <"$1/depends" | sed 's/[(|].*//; s/^ *//; s/ *$//' | grep '^lib' || true)
	# shellcheck disable=SC2086 # one word per package
	install_missing $libs
}
