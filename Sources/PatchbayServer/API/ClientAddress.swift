import Foundation
import Hummingbird
import NIOCore

/// Who is on the other end of a request, for pacing per source: the connection's peer address,
/// or, when the peer is one of `server.trustedProxies`, the right-most `X-Forwarded-For` entry
/// that is not itself a trusted proxy (entries to its left were written by the client and prove
/// nothing). IPv6 sources count by their /64, the block one client usually holds, so one client
/// cannot become millions of sources.
enum ClientAddress {
    static func of(_ request: Request, peer: SocketAddress?, trustedProxies: [IPRange]) -> String {
        guard let peerText = peer?.ipAddress, let peerBytes = IPRange.bytes(of: peerText) else { return "unknown" }
        var source = peerBytes
        if trustedProxies.contains(where: { $0.contains(peerBytes) }) {
            let forwarded = request.headers[values: .init("X-Forwarded-For")!]
                .flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
            // Bounded: a header of a million entries is read from the right, at most 32 of them.
            for entry in forwarded.reversed().prefix(32) {
                guard let bytes = IPRange.bytes(of: withoutPort(entry)) else {
                    // Not an address (a proxy writing something else): the entry itself is the
                    // source, so clients behind the proxy never share the proxy's budget.
                    return "forwarded:" + String(entry.prefix(64))
                }
                source = bytes
                if !trustedProxies.contains(where: { $0.contains(bytes) }) { break }
            }
        }
        return key(source)
    }

    /// `1.2.3.4:5678` → `1.2.3.4`, `[2001:db8::1]:443` → `2001:db8::1` (some proxies add ports).
    static func withoutPort(_ entry: String) -> String {
        if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
            return String(entry[entry.index(after: entry.startIndex)..<close])
        }
        if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") { return String(entry[..<colon]) }
        return entry
    }

    /// IPv4 whole; IPv6 by its /64.
    static func key(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return bytes.prefix(8).map { String(format: "%02x", $0) }.joined() + "::/64"
    }
}

/// An address or a CIDR block (`10.0.0.0/8`, `127.0.0.3`, `fd00::/8`), as `server.trustedProxies`
/// lists them.
public struct IPRange: Sendable, Hashable {
    let network: [UInt8]
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let bytes = Self.bytes(of: first) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...(bytes.count * 8)).contains(parsed) else { return nil }
            length = parsed
        } else {
            length = bytes.count * 8
        }
        network = bytes
        prefixLength = length
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefixLength
        for index in network.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[index] & mask != network[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// 4 bytes for IPv4, 16 for IPv6 (an IPv4-mapped IPv6 address counts as its IPv4 address).
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }
}
