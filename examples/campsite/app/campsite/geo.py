"""Great-circle distances and a grid index to find the stations near each campground."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEG_LAT = math.pi * EARTH_RADIUS_KM / 180.0

Point = tuple[str | int, float, float]  # (id, lat, lon)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class GridIndex:
    """Points bucketed into cells of `cell_deg` degrees, for radius queries."""

    def __init__(self, points: Iterable[Point], cell_deg: float) -> None:
        self.cell = cell_deg
        self.lon_cells = math.ceil(360.0 / cell_deg)
        self.buckets: dict[tuple[int, int], list[Point]] = defaultdict(list)
        for point in points:
            self.buckets[self._key(point[1], point[2])].append(point)

    def _key(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.cell), math.floor((lon + 180.0) / self.cell) % self.lon_cells

    def within(self, lat: float, lon: float, radius_km: float) -> list[tuple[Point, float]]:
        """Points within `radius_km` of (lat, lon), with their distance, nearest first."""
        dlat = radius_km / KM_PER_DEG_LAT
        cos_lat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
        dlon = min(180.0, radius_km / (KM_PER_DEG_LAT * max(cos_lat, 1e-6)))
        row_lo, row_hi = math.floor((lat - dlat) / self.cell), math.floor((lat + dlat) / self.cell)
        col_lo = math.floor((lon - dlon + 180.0) / self.cell)
        col_hi = math.floor((lon + dlon + 180.0) / self.cell)
        cols = {c % self.lon_cells for c in range(col_lo, min(col_hi, col_lo + self.lon_cells - 1) + 1)}
        found = []
        for row in range(row_lo, row_hi + 1):
            for col in cols:
                for point in self.buckets.get((row, col), ()):
                    if abs(point[1] - lat) > dlat:
                        continue
                    dist = haversine_km(lat, lon, point[1], point[2])
                    if dist <= radius_km:
                        found.append((point, dist))
        found.sort(key=lambda pair: pair[1])
        return found


def stations_within(
    campgrounds: Sequence[Point], stations: Sequence[Point], radius_km: float
) -> list[tuple[int, str, float]]:
    """(campground_id, station_id, distance_km) for every station within `radius_km` of a campground."""
    cell = max(0.25, radius_km / KM_PER_DEG_LAT)
    index = GridIndex(stations, cell)
    links = []
    for cg_id, lat, lon in campgrounds:
        for (st_id, _, _), dist in index.within(lat, lon, radius_km):
            links.append((int(cg_id), str(st_id), round(dist, 3)))
    return links
