#pragma once

// Great-circle geometry shared by the catalogue's search index and allocation.

#include <cmath>

namespace stockpile::catalogue {

// Mean Earth radius (IUGG R1), in km.
inline constexpr double kEarthRadiusKm = 6371.0088;
inline constexpr double kDegToRad = 3.14159265358979323846 / 180.0;

// A place on Earth in degrees (WGS84 longitude east, latitude north).
struct GeoPoint {
  double lon = 0;
  double lat = 0;
  friend bool operator==(const GeoPoint& a, const GeoPoint& b) {
    return a.lon == b.lon && a.lat == b.lat;
  }
};

// The haversine term hav(d/R) = sin²(Δlat/2) + cos lat1 · cos lat2 · sin²(Δlon/2), from
// latitudes/longitudes in radians and precomputed cosines of the latitudes.
inline double HaversineTerm(double lat1_rad, double lon1_rad, double cos_lat1, double lat2_rad,
                            double lon2_rad, double cos_lat2) {
  const double s_lat = std::sin((lat2_rad - lat1_rad) * 0.5);
  const double s_lon = std::sin((lon2_rad - lon1_rad) * 0.5);
  return s_lat * s_lat + cos_lat1 * cos_lat2 * s_lon * s_lon;
}

// Great-circle distance in km for a haversine term (clamped: rounding can push it past 1).
inline double KmFromHaversineTerm(double h) {
  return 2.0 * kEarthRadiusKm * std::asin(std::sqrt(std::fmin(1.0, std::fmax(0.0, h))));
}

// Great-circle distance between two points in km (haversine formula). Deterministic: the same
// inputs give bit-identical results, so distances can be compared for equality (paging).
inline double HaversineKm(const GeoPoint& a, const GeoPoint& b) {
  const double lat1 = a.lat * kDegToRad, lat2 = b.lat * kDegToRad;
  return KmFromHaversineTerm(HaversineTerm(lat1, a.lon * kDegToRad, std::cos(lat1), lat2,
                                           b.lon * kDegToRad, std::cos(lat2)));
}

}  // namespace stockpile::catalogue
