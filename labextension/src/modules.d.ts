declare module 'cytoscape-dagre';
declare module 'cytoscape-edgehandles';
declare module '*.css';
