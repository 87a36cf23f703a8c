"""Camera overlay: the arm's skeleton projected into an image, coloured by feasibility level."""

from __future__ import annotations

import cv2
import numpy as np

from morobot.feasibility.verdict import Level

# RGB colours per level: green, orange, red.
LEVEL_COLOURS = {Level.OK: (40, 200, 60), Level.WARNING: (255, 150, 0), Level.INFEASIBLE: (230, 30, 30)}


def project_points(points: np.ndarray, intrinsics: np.ndarray,
                   camera_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of points given in the camera pose's parent frame.

    Args:
        points: (N, 3) points, e.g. in ``panda_link0``.
        intrinsics: 3x3 camera matrix.
        camera_pose: 4x4 camera pose in the points' frame, OpenCV axes (z forward, y down).

    Returns:
        ``(pixels (N, 2) float, in_front (N,) bool)``; pixels of points behind the camera are NaN.
    """
    pts = np.asarray(points, float)
    k = np.asarray(intrinsics, float)
    pose = np.asarray(camera_pose, float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    if k.shape != (3, 3) or pose.shape != (4, 4):
        raise ValueError(f"need 3x3 intrinsics and a 4x4 pose, got {k.shape} and {pose.shape}")
    if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(k)) and np.all(np.isfinite(pose))):
        raise ValueError("points, intrinsics and pose must be finite")
    cam = (pts - pose[:3, 3]) @ pose[:3, :3]
    in_front = cam[:, 2] > 1e-6
    pixels = np.full((len(pts), 2), np.nan)
    uvw = cam[in_front] @ k.T
    pixels[in_front] = uvw[:, :2] / uvw[:, 2:3]
    return pixels, in_front


def draw_overlay(image: np.ndarray, skeleton: np.ndarray, intrinsics: np.ndarray, camera_pose: np.ndarray,
                 level: Level, reason: str = "", rgb: bool = True, thickness: int = 3) -> np.ndarray:
    """Draw the arm's skeleton and the verdict text onto a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 image.
        skeleton: (N, 3) chain of frame origins base to tool (``FeasibilityChecker.skeleton_points``).
        intrinsics: 3x3 camera matrix for this image size.
        camera_pose: 4x4 camera pose in ``panda_link0``, OpenCV axes.
        level: colour: green ok, orange warning, red infeasible.
        reason: text written in the top-left corner (with the level).
        rgb: True for RGB images, False for OpenCV's BGR order.
        thickness: line width (px).

    Returns:
        The annotated image (the input is not modified).
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    out = np.ascontiguousarray(img.copy())
    colour = LEVEL_COLOURS[Level(level)]
    colour = colour if rgb else colour[::-1]
    pixels, valid = project_points(skeleton, intrinsics, camera_pose)
    for i in range(len(pixels) - 1):
        if valid[i] and valid[i + 1]:
            p0 = tuple(int(round(v)) for v in pixels[i])
            p1 = tuple(int(round(v)) for v in pixels[i + 1])
            cv2.line(out, p0, p1, colour, thickness, cv2.LINE_AA)
    for i in np.flatnonzero(valid):
        cv2.circle(out, tuple(int(round(v)) for v in pixels[i]), thickness + 1, colour, -1, cv2.LINE_AA)
    text = Level(level).value + (f": {reason}" if reason else "")
    scale = max(0.35, out.shape[1] / 900.0)
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (min(width + 8, out.shape[1]), height + base + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (4, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return out
