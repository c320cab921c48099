# Sourced by the build scripts: the versions hack/tools/go.mod pins, and a
# guard against asking for another one (it would build the pinned version
# and stamp it with the requested one).

# pinned_version MODULE prints the version of MODULE in hack/tools/go.mod.
pinned_version() {
	(cd "${ROOT}/hack/tools" && go list -m -f '{{.Version}}' "$1")
}

# require_pinned NAME WANT MODULE fails unless WANT is the version of MODULE
# that hack/tools/go.mod pins.
require_pinned() {
	local name=$1 want=$2 module=$3 pinned
	pinned=$(pinned_version "${module}")
	if [[ "${want}" != "${pinned}" ]]; then
		echo "${name}=${want}, but hack/tools/go.mod pins ${module} ${pinned}: change the pin there (cd hack/tools && go get ${module}@${want} && go mod tidy), or unset ${name}" >&2
		exit 1
	fi
}
