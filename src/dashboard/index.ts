export { dashboardRoutes } from "./dashboard-routes.js";
export { dashboardHtml } from "./dashboard-page.js";
