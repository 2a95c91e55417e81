/**
 * The routing pass: every service's exposures go to the platform's router (Traefik), if it
 * has one, and the routed hosts to the services that follow its routes (the tunnel).
 */
import { isExposureRouter, isRouteFollower } from '../model/exposure';
import type { Platform } from '../model/platform';

export function routeExposures(platform: Platform): void {
  const router = platform.services.find(isExposureRouter);
  if (!router) return;
  router.routeExposures(platform.services.flatMap((service) => service.exposures.map((exposure) => ({ service, exposure }))));
  for (const follower of platform.services.filter(isRouteFollower)) follower.followRoutes(router.routedHosts);
}
