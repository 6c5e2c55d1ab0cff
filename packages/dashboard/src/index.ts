export { StudyData, queryTable, STATUS_CODES, type CandidateDetail, type Points, type PointStatus, type TableQuery } from './data.js';
export { startDashboard, allowedHostNames, hostOfHeader, errorPage, pageFile, STATIC_DIR, type Dashboard, type DashboardOptions } from './server.js';
export { htmlReport, headlineChart, comparisonChart, type ComparisonRow, type ReportFormat } from './report.js';
