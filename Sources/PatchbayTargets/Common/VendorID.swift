import Foundation

/// Ids vendors return are data, not paths (review F14): a kind keeps an id only when it has the
/// form its vendor uses, and every id goes into a URL as one percent-encoded path segment, so a
/// broken or hostile endpoint answering `../../otherpage/incidents/X` cannot steer an
/// authenticated PATCH or DELETE elsewhere.
public enum VendorID {
    /// 1 to 64 ASCII letters and digits, plus the `extra` characters the vendor uses.
    public static func isValid(_ id: String, extra: Set<Character> = []) -> Bool {
        (1...64).contains(id.utf8.count) && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || extra.contains($0)) }
    }

    /// `id` as one path segment: everything but ASCII letters, digits, `-`, `.`, `_` and `~`
    /// percent-encoded (RFC 3986's unreserved characters), so a `/` never starts another segment.
    public static func pathSegment(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
