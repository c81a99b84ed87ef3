# shellcheck shell=sh
# IMDSv2 and instance tags for Patchbay agents (POSIX sh, needs curl). Source it: . ./imds.sh
#
#   PATCHBAY_IMDS_URL   metadata endpoint (default http://169.254.169.254; tests point it at a mock)
#   PATCHBAY_IMDS_TTL   session token lifetime in seconds, 1-21600 (default 900)
#
# Tags are readable only when the instance's metadata options have InstanceMetadataTags=enabled
# (aws ec2 modify-instance-metadata-options --instance-id i-... --instance-metadata-tags enabled).
# Any non-200 answer counts as "tag absent or tags not enabled"; callers fall back to a default.
# Nothing here sleeps: each request is tried up to 3 times at once, with short timeouts.

pb_imds_base() {
    printf '%s' "${PATCHBAY_IMDS_URL:-http://169.254.169.254}"
}

# pb_imds_token: prints an IMDSv2 session token (PUT /latest/api/token with the TTL header).
pb_imds_token() {
    pb_try=0
    while [ "$pb_try" -lt 3 ]; do
        pb_try=$((pb_try + 1))
        if pb_tok=$(curl -sf --noproxy '*' --connect-timeout 2 --max-time 5 -X PUT \
            -H "X-aws-ec2-metadata-token-ttl-seconds: ${PATCHBAY_IMDS_TTL:-900}" \
            "$(pb_imds_base)/latest/api/token") && [ -n "$pb_tok" ]; then
            printf '%s' "$pb_tok"
            return 0
        fi
    done
    return 1
}

# pb_imds_get PATH TOKEN: prints /latest/PATH (e.g. meta-data/instance-id); non-zero unless 200.
pb_imds_get() {
    [ -n "${2:-}" ] || return 1
    pb_try=0
    while [ "$pb_try" -lt 3 ]; do
        pb_try=$((pb_try + 1))
        pb_code=0
        pb_val=$(curl -sf --noproxy '*' --connect-timeout 2 --max-time 5 \
            -H "X-aws-ec2-metadata-token: $2" "$(pb_imds_base)/latest/$1") || pb_code=$?
        case $pb_code in
            0) printf '%s' "$pb_val"; return 0 ;;
            22) return 1 ;;        # an HTTP error (401, 404): asking again will not help
        esac
    done
    return 1
}

# pb_valid_tag_key KEY: tag keys visible in IMDS use only letters, digits and + - = . , _ : @
pb_valid_tag_key() {
    case $1 in
        ''|.|..|_index|*[!A-Za-z0-9+=.,_:@-]*) return 1 ;;
    esac
    return 0
}

# pb_imds_tag KEY TOKEN: prints the instance tag's value; non-zero when unreadable.
pb_imds_tag() {
    pb_valid_tag_key "$1" || return 1
    pb_imds_get "meta-data/tags/instance/$1" "${2:-}"
}

# pb_tag_or_default KEY DEFAULT TOKEN: the tag's value when readable and not blank, else DEFAULT.
# Says on stderr which one it used. An empty KEY means "do not read a tag".
pb_tag_or_default() {
    if [ -n "$1" ] && pb_tagval=$(pb_imds_tag "$1" "${3:-}") && [ -n "$(printf '%s' "$pb_tagval" | tr -d ' \t\r\n')" ]; then
        printf '%s' "$pb_tagval"
        return 0
    fi
    if [ -n "$1" ]; then
        printf 'patchbay: instance tag %s unreadable (tags in instance metadata disabled, no IMDS, or no such tag); using %s\n' \
            "$1" "${2:-nothing}" >&2
    fi
    printf '%s' "${2:-}"
}
