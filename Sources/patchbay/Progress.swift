import Foundation
import PatchbayCore
import Synchronization

/// Progress of long store work (`prune`, `migrate --from`) on one line of standard error, drawn
/// only when it is a terminal (pipes and logs stay quiet), at most ten times a second. Called
/// from the store's tasks.
final class StoreProgressLine: Sendable {
    let label: String
    let unit: String
    let isInteractive = isatty(STDERR_FILENO) == 1
    private let lastDrawn = Mutex<ContinuousClock.Instant?>(nil)

    init(label: String, unit: String) {
        self.label = label
        self.unit = unit
    }

    /// For the store: `done` of `total` (nil when not known).
    var report: StoreProgress? {
        guard isInteractive else { return nil }
        return { [self] done, total in draw(done: done, total: total) }
    }

    func draw(done: Int, total: Int?) {
        let now = ContinuousClock.now
        let due = lastDrawn.withLock { last -> Bool in
            // The last count is always drawn, so the line never ends on an older one.
            if let last, now - last < .milliseconds(100), done != total { return false }
            last = now
            return true
        }
        guard due else { return }
        var line = "\r\(label): \(done.formatted()) \(unit)"
        if let total, total > 0 {
            let width = 30
            let filled = width * min(done, total) / total
            line =
                "\r\(label) [" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                + "] \(done.formatted())/\(total.formatted()) \(unit)"
        }
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    /// Ends the line, if one was drawn.
    func finish() {
        if isInteractive, lastDrawn.withLock({ $0 != nil }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// A one-line progress bar on standard error, drawn only when it is a terminal.
final class ProgressBar {
    let total: Int
    let label: String
    private var done = 0
    let isInteractive = isatty(STDERR_FILENO) == 1

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func advance() {
        done += 1
        guard isInteractive, total > 20 else { return }
        let width = 30
        let filled = width * done / max(total, 1)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)".utf8))
    }

    func finish() {
        if isInteractive, total > 20 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
