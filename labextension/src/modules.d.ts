declare module 'cytoscape-dagre';
declare module 'cytoscape-edgehandles';
declare module '*.css';
declare module '*.svg' {
  const svgstr: string;
  export default svgstr;
}
