/// Whether a host names this machine's loopback, the one place plain `http://` (and the secrets
/// it carries) and the README's example tokens are allowed: `localhost`, `::1` (bracketed or
/// not), or an IPv4 literal in 127.0.0.0/8. Only a literal counts: `127.example.com` is a name
/// its owner can point anywhere, and a prefix test let plain http:// out to it.
public enum LoopbackHost {
    public static func matches(_ host: String) -> Bool {
        let host = host.lowercased()
        if ["localhost", "::1", "[::1]"].contains(host) { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy { $0.isASCII && $0.isNumber } && UInt8($0) != nil }
    }
}
