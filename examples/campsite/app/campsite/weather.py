"""A synthetic but plausible hourly temperature model for weather stations.

Temperature = annual mean by latitude + seasonal cycle (flipped in the southern hemisphere)
+ daily cycle peaking about 15:00 local solar time + a spatially smooth weather pattern that
drifts over days + a per-station offset + gaussian noise. Stations report at their own habitual
minute (METAR reports mostly go out at minute 50-59, some a few minutes after the hour), now and
then a special report comes in between, and about 3% of hours are missing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

MISSING_RATE = 0.03
SPECIAL_RATE = 0.02
DAY_S = 86400.0
YEAR_DAYS = 365.2422
EPOCH_2000 = 946684800  # 2000-01-01T00:00:00Z
SUMMER_PEAK_DOY = 200  # late July in the north


def annual_mean_c(lat: float) -> float:
    a = abs(lat)
    return 27.0 - 0.05 * a - 0.008 * a * a


def seasonal_amplitude_c(lat: float) -> float:
    amp = min(20.0, 1.0 + 0.3 * abs(lat))
    return amp if lat >= 0 else 0.6 * amp


def seasonal_c(lat: float, epoch_s: float) -> float:
    doy = ((epoch_s - EPOCH_2000) / DAY_S) % YEAR_DAYS
    phase = math.cos(2 * math.pi * (doy - SUMMER_PEAK_DOY) / YEAR_DAYS)
    return annual_mean_c(lat) + seasonal_amplitude_c(lat) * (phase if lat >= 0 else -phase)


def diurnal_c(lon: float, epoch_s: float, amplitude: float) -> float:
    solar_hour = ((epoch_s % DAY_S) / 3600.0 + lon / 15.0) % 24.0
    return amplitude * math.cos(2 * math.pi * (solar_hour - 15.0) / 24.0)


def weather_pattern_c(lat: float, lon: float, epoch_s: float) -> float:
    """Smooth in space (hundreds of km) and time (days), so neighbouring stations agree."""
    days = epoch_s / DAY_S
    return (
        3.0 * math.sin(math.radians(lat) * 9.0 + days / 1.7) * math.cos(math.radians(lon) * 7.0 - days / 2.9)
    )


class Station:
    """One station's fixed habits, drawn from its own seeded generator."""

    def __init__(self, station_id: str, lat: float, lon: float, seed: int) -> None:
        self.id = station_id
        self.lat = lat
        self.lon = lon
        self.rng = random.Random(f"{seed}|{station_id}")
        self.offset_c = self.rng.gauss(0.0, 1.5)
        self.diurnal_amp = self.rng.uniform(3.0, 7.0)
        if self.rng.random() < 0.85:
            self.report_offset_s = -60 * self.rng.randint(1, 10)  # minute 50-59 of the hour before
        else:
            self.report_offset_s = 60 * self.rng.randint(0, 6)  # a few minutes after the hour

    def temp_c(self, epoch_s: float) -> float:
        return (
            seasonal_c(self.lat, epoch_s)
            + diurnal_c(self.lon, epoch_s, self.diurnal_amp)
            + weather_pattern_c(self.lat, self.lon, epoch_s)
            + self.offset_c
            + self.rng.gauss(0.0, 0.4)
        )

    def readings(self, hours: list[int]) -> Iterator[tuple[int, float]]:
        """(epoch seconds, °C) for each nominal hour (epoch seconds) in `hours`."""
        rng = self.rng
        for hour in hours:
            if rng.random() < MISSING_RATE:
                continue
            at = hour + self.report_offset_s
            yield at, self.temp_c(at)
            if rng.random() < SPECIAL_RATE:
                special = hour - 60 * rng.randint(15, 45) + rng.choice((0, 30))  # between two routine reports
                yield special, self.temp_c(special)
