#!/usr/bin/env python3
"""Draw the OmniClaw app and tray icons as RGBA PNGs.

Uses only the Python standard library (zlib + struct write the PNGs), so the
icons can be regenerated on any machine:

    python3 scripts/make-icons.py            # writes icons/ and ui/favicon.png
    python3 scripts/make-icons.py OUT_DIR    # writes everything into OUT_DIR

The mark: a light shield with three claw slashes cut across it, on a deep
blue rounded square. Tray variants carry a green / amber / red status badge
in the lower right corner.

Shapes are polygons in a unit square (0..1, y down). They are rasterised with
4x4 supersampling, scanline by scanline, so edges come out anti-aliased.
"""

import math
import os
import struct
import sys
import zlib

SUBSAMPLES = 4

# Colours are (r, g, b) in 0..255.
BG_TOP = (34, 64, 110)
BG_BOTTOM = (14, 28, 52)
SHIELD = (236, 242, 250)
SHIELD_RIM = (150, 178, 214)
CLAW = (22, 44, 80)
BADGES = {
    "ok": (46, 204, 113),
    "warning": (245, 166, 35),
    "error": (231, 76, 60),
}
BADGE_RING = (255, 255, 255)


# ---------------------------------------------------------------- geometry


def rounded_rect(x0, y0, x1, y1, r, steps=12):
    """Polygon of a rectangle with circular corners of radius r."""
    pts = []
    corners = [
        (x1 - r, y0 + r, -90.0),  # top right
        (x1 - r, y1 - r, 0.0),  # bottom right
        (x0 + r, y1 - r, 90.0),  # bottom left
        (x0 + r, y0 + r, 180.0),  # top left
    ]
    for cx, cy, start in corners:
        for i in range(steps + 1):
            a = math.radians(start + 90.0 * i / steps)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def circle(cx, cy, r, steps=64):
    return [
        (cx + r * math.cos(2 * math.pi * i / steps), cy + r * math.sin(2 * math.pi * i / steps))
        for i in range(steps)
    ]


def quad(p0, p1, p2, t):
    u = 1.0 - t
    return (
        u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
        u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1],
    )


def shield(cx, top, half_w, height, inset=0.0):
    """A heater shield: flat top with a shallow dip, sides curving to a point."""
    left = cx - half_w + inset
    right = cx + half_w - inset
    t = top + inset
    tip = top + height - inset * 1.6
    shoulder = top + height * 0.42
    pts = []
    steps = 24
    # Top edge dips slightly in the middle.
    for i in range(steps + 1):
        pts.append(quad((left, t), (cx, t + height * 0.08), (right, t), i / steps))
    # Right side: straight down to the shoulder, then a curve to the tip.
    for i in range(1, steps + 1):
        pts.append(quad((right, t), (right, shoulder), (right, shoulder), i / steps))
    for i in range(1, steps + 1):
        pts.append(quad((right, shoulder), (right - half_w * 0.1, tip - height * 0.22), (cx, tip), i / steps))
    for i in range(1, steps + 1):
        pts.append(quad((cx, tip), (left + half_w * 0.1, tip - height * 0.22), (left, shoulder), i / steps))
    for i in range(1, steps):
        pts.append(quad((left, shoulder), (left, shoulder), (left, t), i / steps))
    return pts


def slash(p0, p1, p2, width, steps=32):
    """A tapered, curved stroke along a quadratic curve: a claw scratch."""
    centre = [quad(p0, p1, p2, i / steps) for i in range(steps + 1)]
    left, right = [], []
    for i, (x, y) in enumerate(centre):
        a = centre[max(i - 1, 0)]
        b = centre[min(i + 1, steps)]
        dx, dy = b[0] - a[0], b[1] - a[1]
        n = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / n, dx / n
        # Thin at both ends, widest a little past the middle, like a real scratch.
        t = i / steps
        w = width * math.sin(math.pi * t) ** 0.8 * (0.75 + 0.25 * t)
        left.append((x + nx * w / 2, y + ny * w / 2))
        right.append((x - nx * w / 2, y - ny * w / 2))
    return left + right[::-1]


# -------------------------------------------------------------- rasteriser


def coverage(poly, size):
    """Fraction of each pixel covered by the polygon (even-odd), row-major."""
    cov = [0.0] * (size * size)
    pts = [(x * size, y * size) for x, y in poly]
    edges = list(zip(pts, pts[1:] + pts[:1]))
    ys = [p[1] for p in pts]
    row_lo = max(0, int(math.floor(min(ys))))
    row_hi = min(size - 1, int(math.ceil(max(ys))))
    weight = 1.0 / SUBSAMPLES
    for row in range(row_lo, row_hi + 1):
        base = row * size
        for s in range(SUBSAMPLES):
            y = row + (s + 0.5) / SUBSAMPLES
            xs = []
            for (x0, y0), (x1, y1) in edges:
                if (y0 <= y < y1) or (y1 <= y < y0):
                    xs.append(x0 + (y - y0) * (x1 - x0) / (y1 - y0))
            xs.sort()
            for a, b in zip(xs[0::2], xs[1::2]):
                a = max(a, 0.0)
                b = min(b, float(size))
                if b <= a:
                    continue
                ia, ib = int(a), int(b)
                if ia == ib:
                    cov[base + ia] += (b - a) * weight
                    continue
                cov[base + ia] += (ia + 1 - a) * weight
                for col in range(ia + 1, min(ib, size)):
                    cov[base + col] += weight
                if ib < size:
                    cov[base + ib] += (b - ib) * weight
    return cov


class Canvas:
    """Premultiplied-free RGBA float canvas with source-over compositing."""

    def __init__(self, size):
        self.size = size
        self.px = [[0.0, 0.0, 0.0, 0.0] for _ in range(size * size)]

    def fill(self, poly, colour, alpha=1.0):
        self.fill_with(poly, lambda _x, _y: colour, alpha)

    def fill_with(self, poly, shade, alpha=1.0):
        size = self.size
        cov = coverage(poly, size)
        for i, c in enumerate(cov):
            if c <= 0.0:
                continue
            a = min(c, 1.0) * alpha
            r, g, b = shade(i % size / size, i // size / size)
            p = self.px[i]
            out_a = a + p[3] * (1.0 - a)
            if out_a <= 0.0:
                continue
            k = p[3] * (1.0 - a)
            p[0] = (r * a + p[0] * k) / out_a
            p[1] = (g * a + p[1] * k) / out_a
            p[2] = (b * a + p[2] * k) / out_a
            p[3] = out_a

    def erase(self, poly):
        """Cut the polygon out of everything drawn so far (alpha only)."""
        cov = coverage(poly, self.size)
        for i, c in enumerate(cov):
            if c > 0.0:
                self.px[i][3] *= 1.0 - min(c, 1.0)

    def png(self):
        size = self.size
        raw = bytearray()
        for row in range(size):
            raw.append(0)  # filter type: none
            for p in self.px[row * size:(row + 1) * size]:
                raw.extend(
                    (
                        round(min(max(p[0], 0.0), 255.0)),
                        round(min(max(p[1], 0.0), 255.0)),
                        round(min(max(p[2], 0.0), 255.0)),
                        round(min(max(p[3], 0.0), 1.0) * 255.0),
                    )
                )
        return encode_png(size, size, bytes(raw))


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(width, height, raw_rows):
    # Colour type 6 = RGBA, 8 bits per channel: what Tauri requires.
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw_rows, 9))
        + chunk(b"IEND", b"")
    )


def encode_ico(png_bytes, size):
    """A Windows .ico holding one PNG image (valid since Vista)."""
    dim = 0 if size >= 256 else size
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png_bytes), 6 + 16)
    return header + entry + png_bytes


# ------------------------------------------------------------------ scenes


def lerp(a, b, t):
    return tuple(a[i] + (b[i] - a[i]) * t for i in range(3))


def draw_mark(canvas):
    """Rounded square, shield, three claw slashes."""
    canvas.fill_with(
        rounded_rect(0.03, 0.03, 0.97, 0.97, 0.2),
        lambda _x, y: lerp(BG_TOP, BG_BOTTOM, y),
    )
    canvas.fill(shield(0.5, 0.17, 0.29, 0.68), SHIELD_RIM)
    canvas.fill_with(
        shield(0.5, 0.17, 0.29, 0.68, inset=0.025),
        lambda _x, y: lerp(SHIELD, (206, 220, 238), y),
    )
    # Three scratches, top right to bottom left, the middle one the longest.
    for dx, dy, length in ((-0.1, 0.02, 0.92), (0.0, 0.0, 1.0), (0.1, -0.02, 0.92)):
        ox, oy = 0.51 + dx, 0.47 + dy
        half = 0.19 * length
        p0 = (ox + half * 0.55, oy - half)
        p2 = (ox - half * 0.55, oy + half)
        p1 = (ox + 0.06, oy + 0.02)
        canvas.fill(slash(p0, p1, p2, 0.085), CLAW)


def draw_badge(canvas, colour):
    cx, cy, r = 0.76, 0.76, 0.2
    canvas.erase(circle(cx, cy, r + 0.06))
    canvas.fill(circle(cx, cy, r + 0.035), BADGE_RING)
    canvas.fill(circle(cx, cy, r), colour)


def render(size, badge=None):
    canvas = Canvas(size)
    draw_mark(canvas)
    if badge is not None:
        draw_badge(canvas, BADGES[badge])
    return canvas.png()


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, ".."))
    out = argv[1] if len(argv) > 1 else os.path.join(root, "icons")
    ui = argv[1] if len(argv) > 1 else os.path.join(root, "ui")
    written = []

    def write(name, data, folder=out):
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        written.append(os.path.relpath(path, root) if argv[1:] == [] else name)

    write("icon.png", render(512))
    write("128x128.png", render(128))
    write("favicon.png", render(128), folder=ui)
    write("32x32.png", render(32))
    write("icon.ico", encode_ico(render(256), 256))
    for state in ("ok", "warning", "error"):
        write("tray-%s.png" % state, render(64, badge=state))
    # No gateway yet: the mark without a badge, so nothing looks healthy.
    write("tray-idle.png", render(64))
    print("wrote %s" % ", ".join(written))


if __name__ == "__main__":
    main(sys.argv)
