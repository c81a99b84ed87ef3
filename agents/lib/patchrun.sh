# shellcheck shell=sh
# Helpers for the Patchbay SSM document's steps (POSIX sh). Source it: . ./patchrun.sh
#
#   PATCHBAY_PACKAGE_SOURCE     rpm | dpkg | auto (default: dpkg when dpkg-query exists, else rpm)
#   PATCHBAY_DPKG_LOG           dpkg log (default /var/log/dpkg.log; its .1 rotation is read too)
#   PATCHBAY_PATCH_STATES_FILE  Patch Manager's state file (for "reboot pending")
#
# pb_report reads PB_URL_PARAM, PB_TOKEN_PARAM (Parameter Store names) and PB_DEADLINE;
# pb_reported reads PB_STRICT.

# pb_now_epoch: seconds since 1970.
pb_now_epoch() {
    pb_t=$(date +%s 2>/dev/null)
    case $pb_t in ''|*[!0-9]*) pb_t=$(awk 'BEGIN { srand(); print srand() }') ;; esac
    printf '%s' "$pb_t"
}

# pb_utc_time EPOCH: 2026-12-04T08:30:00Z, in awk (no GNU date -d needed).
pb_utc_time() {
    awk -v e="$1" 'BEGIN {
        e = int(e); z = int(e / 86400); s = e - z * 86400; z += 719468
        era = int(z / 146097); doe = z - era * 146097
        yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
        y = yoe + era * 400; doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
        mp = int((5 * doy + 2) / 153); d = doy - int((153 * mp + 2) / 5) + 1
        m = (mp < 10) ? mp + 3 : mp - 9; if (m <= 2) y++
        printf "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, int(s / 3600), int(s % 3600 / 60), s % 60
    }'
}

# pb_packages_since EPOCH [DPKG_LOCAL_TIME]: packages installed or updated since EPOCH, one per
# line, sorted. RPM: name-version-release.arch by INSTALLTIME. dpkg: "name:arch version" from the
# log's "status installed" lines at or after DPKG_LOCAL_TIME ("YYYY-MM-DD HH:MM:SS", local time,
# as dpkg writes it). Removed packages are not listed.
pb_packages_since() {
    pb_source=${PATCHBAY_PACKAGE_SOURCE:-auto}
    if [ "$pb_source" = auto ]; then
        if command -v dpkg-query >/dev/null 2>&1; then pb_source=dpkg
        elif command -v rpm >/dev/null 2>&1; then pb_source=rpm
        else echo "patchbay: neither rpm nor dpkg found; no package list" >&2; return 1
        fi
    fi
    case $pb_source in
        rpm)
            pb_list=$(rpm -qa --qf '%{INSTALLTIME}\t%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n') || return 1
            printf '%s\n' "$pb_list" | awk -F '\t' -v t="$1" '$1 ~ /^[0-9]+$/ && $1 + 0 >= t + 0 && $2 != "" { print $2 }' | LC_ALL=C sort -u
            ;;
        dpkg)
            pb_since=${2:-}
            if [ -z "$pb_since" ]; then
                pb_since=$(date -d "@$1" '+%Y-%m-%d %H:%M:%S' 2>/dev/null) || return 1
            fi
            pb_log=${PATCHBAY_DPKG_LOG:-/var/log/dpkg.log}
            set --
            [ ! -r "$pb_log.1" ] || set -- "$pb_log.1"
            [ ! -r "$pb_log" ] || set -- "$@" "$pb_log"
            [ $# -gt 0 ] || return 0
            awk -v t="$pb_since" '$3 == "status" && $4 == "installed" && ($1 " " $2) >= t && $5 != "" { print $5 " " $6 }' "$@" | LC_ALL=C sort -u
            ;;
        *) echo "patchbay: PATCHBAY_PACKAGE_SOURCE must be rpm, dpkg or auto" >&2; return 1 ;;
    esac
}

# pb_reboot_pending PACKAGES_FILE: AWS-RunPatchBaseline's RebootIfNeeded rule: reboot when this
# run installed anything, or when Patch Manager records a patch as InstalledPendingReboot.
pb_reboot_pending() {
    [ ! -s "$1" ] || return 0
    pb_states=${PATCHBAY_PATCH_STATES_FILE:-/var/log/amazon/ssm/patch-configuration/patch-states-configuration.json}
    [ -r "$pb_states" ] && grep -q 'InstalledPendingReboot' "$pb_states"
}

# pb_param NAME: a Parameter Store value, decrypted (SecureString), on stdout.
pb_param() {
    pb_region=${AWS_SSM_REGION_NAME:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}
    AWS_RETRY_MODE=${AWS_RETRY_MODE:-adaptive}
    AWS_MAX_ATTEMPTS=${AWS_MAX_ATTEMPTS:-8}
    export AWS_RETRY_MODE AWS_MAX_ATTEMPTS
    if [ -n "$pb_region" ]; then
        aws ssm get-parameter --region "$pb_region" --name "$1" --with-decryption --query Parameter.Value --output text
    else
        aws ssm get-parameter --name "$1" --with-decryption --query Parameter.Value --output text
    fi
}

# pb_read STATE NAME: a value the first step recorded.
pb_read() {
    cat "$1/$2" 2>/dev/null
}

# pb_report STATE TYPE IDEMPOTENCY_KEY [patchbay-report options...]: reads Patchbay's URL and
# token from Parameter Store (in a subshell, so the token never outlives the call) and posts one
# event with the app, environment, instance and window the first step recorded.
pb_report() {
    (
        pb_state=$1; pb_type=$2; pb_key=$3
        shift 3
        if ! command -v aws >/dev/null 2>&1; then
            echo "patchbay: the AWS CLI (aws) is not installed; cannot read $PB_URL_PARAM and $PB_TOKEN_PARAM" >&2
            exit 2
        fi
        PATCHBAY_URL=$(pb_param "$PB_URL_PARAM") || PATCHBAY_URL=""
        if [ -z "$PATCHBAY_URL" ]; then
            echo "patchbay: cannot read Parameter Store parameter $PB_URL_PARAM (ssm:GetParameter)" >&2
            exit 2
        fi
        PATCHBAY_TOKEN=$(pb_param "$PB_TOKEN_PARAM") || PATCHBAY_TOKEN=""
        if [ -z "$PATCHBAY_TOKEN" ]; then
            echo "patchbay: cannot read Parameter Store parameter $PB_TOKEN_PARAM (ssm:GetParameter, kms:Decrypt)" >&2
            exit 2
        fi
        export PATCHBAY_URL PATCHBAY_TOKEN
        exec "$pb_state/patchbay-report" --type "$pb_type" \
            --app "$(pb_read "$pb_state" app)" --environment "$(pb_read "$pb_state" environment)" \
            --instance-id "$(pb_read "$pb_state" instance-id)" --instance-name "$(pb_read "$pb_state" instance-name)" \
            --window-id "$(pb_read "$pb_state" window-id)" \
            --window-start "$(pb_read "$pb_state" window-start)" --window-end "$(pb_read "$pb_state" window-end)" \
            --idempotency-key "$pb_key" --deadline "${PB_DEADLINE:-300}" "$@"
    )
}

# pb_reported WHAT RC: the exit status of a report step whose report (pb_report) ended with RC.
# A report that did not get through is logged; it fails the step only when PB_STRICT is true,
# so a Patchbay outage, a refusal or a wrong token never fails patching by default.
pb_reported() {
    case $2 in
        0) return 0 ;;
        1) pb_why="Patchbay unreachable or busy until the ${PB_DEADLINE:-300}s deadline" ;;
        2) pb_why="no aws CLI, Parameter Store unreadable, or a local error" ;;
        3) pb_why="refused by Patchbay: wrong token or an invalid event" ;;
        4) pb_why="no app or environment: no App/Environment tag readable and the parameters empty" ;;
        *) pb_why="patchbay-report exit $2" ;;
    esac
    echo "patchbay: $1 was not reported ($pb_why)" >&2
    if [ "${PB_STRICT:-false}" = true ]; then
        echo "patchbay: ReportStrict=true: this step fails (exit $2)" >&2
        return "$2"
    fi
    echo "patchbay: the command's result does not depend on it (ReportStrict=false)" >&2
    return 0
}
