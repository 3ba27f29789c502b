# Sourced by the benchmark scripts, not run.

# apt_install PACKAGE...: installs Debian packages, through sudo unless root.
apt_install() {
    local sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@"
}
